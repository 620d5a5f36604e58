"""Labelling a study folder: the label journal and CSV, patient ids, the learner that refits as answers come in,
the choice of the next film, and the simulation `medflip bench active` runs. No Qt (the workspace is
app/labelling/)."""
