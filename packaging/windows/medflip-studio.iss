; Inno Setup recipe for the light MedFLIP Studio app on Windows (no torch; the trainer add-on has its own
; installer, medflip-studio-trainer.iss). UNTESTED: this project has no Windows build machine.
; Research use only, not for diagnosis.
;
; Build on Windows, the light app from a venv WITHOUT torch (the spec refuses otherwise):
;   py -3.11 -m venv build\light-venv
;   build\light-venv\Scripts\pip install -c constraints.txt <the Makefile's LIGHT_PKGS>
;   build\light-venv\Scripts\pip install --no-deps -e .
;   set MEDFLIP_FLAVOUR=light
;   build\light-venv\Scripts\pyinstaller --noconfirm --clean --distpath dist\light pyinstaller.spec
;                                                              -> dist\light\MedFLIPStudio\MedFLIPStudio.exe
;   iscc packaging\windows\medflip-studio.iss                  -> dist\MedFLIPStudio-0.1.0-setup.exe
; The spec wants resources\icons\medflip.ico for the exe icon (convert medflip.png; it falls back to none).
;
; Known risk to check on the first Windows build: the light exe is windowed (console=False), and PyInstaller may
; then give the process no stdout, while the probe fine-tune and batch jobs the GUI starts as `--medflip ...`
; write their JSON-lines progress there. The trainer is not affected: it runs in the add-on's console exe
; (medflip-studio-trainer.iss). If the probe shows no progress, add a console EXE for `--medflip` to the spec.

#define AppName "MedFLIP Studio"
#define AppVersion "0.1.0"
#define AppExe "MedFLIPStudio.exe"

[Setup]
AppId={{6F1C9B52-2E0B-4C4E-9A57-5B1D2A3C7E11}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=MedFLIP Studio
DefaultDirName={autopf}\MedFLIP Studio
DefaultGroupName=MedFLIP Studio
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=MedFLIPStudio-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
DiskSpanning=no
ChangesAssociations=yes
UninstallDisplayIcon={app}\{#AppExe}

[Files]
Source: "..\..\dist\light\MedFLIPStudio\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\MedFLIP Studio"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\MedFLIP Studio"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked
Name: "assocdicom"; Description: "Open DICOM files (.dcm) with MedFLIP Studio"

[Registry]
; "Open with" for DICOM, PNG and JPEG; DICOM becomes the default handler only when the task is ticked
Root: HKA; Subkey: "Software\Classes\MedFLIPStudio.Image"; ValueType: string; ValueData: "Radiograph"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\MedFLIPStudio.Image\DefaultIcon"; ValueType: string; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\MedFLIPStudio.Image\shell\open\command"; ValueType: string; ValueData: """{app}\{#AppExe}"" ""%1"""
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "MedFLIPStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.dcm"; ValueType: string; ValueData: "MedFLIPStudio.Image"; Tasks: assocdicom; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.png\OpenWithProgids"; ValueType: string; ValueName: "MedFLIPStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.jpg\OpenWithProgids"; ValueType: string; ValueName: "MedFLIPStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.jpeg\OpenWithProgids"; ValueType: string; ValueName: "MedFLIPStudio.Image"; ValueData: ""; Flags: uninsdeletevalue

[Run]
Filename: "{app}\{#AppExe}"; Description: "Start MedFLIP Studio"; Flags: nowait postinstall skipifsilent
