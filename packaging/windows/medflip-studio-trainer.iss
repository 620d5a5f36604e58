; Inno Setup recipe for the MedFLIP Studio trainer add-on on Windows: PyTorch for pre-training and partial/full
; fine-tuning, and the CUDA runtime that moves the app's inference to an NVIDIA GPU (medflip_core/inference/gpu_runtime.py).
; UNTESTED: this project has no Windows build machine. Research use only, not for diagnosis.
;
; The light app looks for the add-on beside its own folder, as <parent>\medflip-studio-trainer\
; MedFLIPStudio-trainer.exe, and in the user's data folder (medflip_core/processes.py), so this installer defaults
; to the folder next to where the app's installer put the app (read from the app's uninstall registry key, of all
; users or of this user), or to the user's data folder when it cannot write there, and installs nothing else: no
; shortcuts, no file associations. Uninstalling it leaves the app, models and runs alone.
;
; Build on Windows, from the project's full venv (with torch):
;   py -3.11 -m venv .venv
;   .venv\Scripts\pip install -c constraints.txt -e ".[dist]"
;   set MEDFLIP_FLAVOUR=trainer
;   .venv\Scripts\pyinstaller --noconfirm --clean --distpath dist\trainer pyinstaller.spec
;                                              -> dist\trainer\MedFLIPStudio-trainer\MedFLIPStudio-trainer.exe
;   iscc packaging\windows\medflip-studio-trainer.iss          -> dist\MedFLIPStudio-trainer-0.1.0-setup.exe

#define AppVersion "0.1.0"
; the AppId of medflip-studio.iss: Inno Setup keeps the app's folder under this uninstall key
#define StudioKey "Software\Microsoft\Windows\CurrentVersion\Uninstall\{6F1C9B52-2E0B-4C4E-9A57-5B1D2A3C7E11}_is1"

[Setup]
AppId={{B3E0D1A4-7C52-4F8E-8D1B-2A9C6E4F7D30}
AppName=MedFLIP Studio trainer add-on
AppVersion={#AppVersion}
AppPublisher=MedFLIP Studio
DefaultDirName={code:BesideTheApp}
DisableDirPage=no
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=MedFLIPStudio-trainer-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
DiskSpanning=no

[Files]
Source: "..\..\dist\trainer\MedFLIPStudio-trainer\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Code]
// Where the app looks (medflip_core/processes.py addon_candidates): beside the app's folder, as
// <parent>\medflip-studio-trainer, or in the user's data folder (platformdirs: %LOCALAPPDATA%\MedFLIP\
// medflip-studio\trainer). The app's installer may have run for all users (HKLM, Program Files) or for this user
// only (HKCU); an add-on installed for this user only cannot write beside an all-users app, so it goes to the
// user's data folder, where the app finds it as well. (A MEDFLIP_DATA_DIR set for the app moves that folder: such
// a user picks the folder on the directory page, or sets MEDFLIP_TRAINER.)
function UserDataTrainer(): String;
begin
  Result := ExpandConstant('{localappdata}\MedFLIP\medflip-studio\trainer');
end;

function StudioLocation(Root: Integer; var Location: String): Boolean;
begin
  Result := RegQueryStringValue(Root, '{#StudioKey}', 'InstallLocation', Location) and (Location <> '');
end;

function BesideTheApp(Param: String): String;
var
  Location: String;
begin
  if StudioLocation(HKCU, Location) then
    Result := ExtractFilePath(RemoveBackslash(Location)) + 'medflip-studio-trainer'
  else if StudioLocation(HKLM, Location) and IsAdminInstallMode() then
    Result := ExtractFilePath(RemoveBackslash(Location)) + 'medflip-studio-trainer'
  else if IsAdminInstallMode() then
    // elevated, perhaps as another account: {localappdata} would be that account's; beside the app's default
    // folder ({autopf}\MedFLIP Studio) serves every user
    Result := ExpandConstant('{autopf}\medflip-studio-trainer')
  else
    Result := UserDataTrainer();
end;
