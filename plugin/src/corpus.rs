//! Folders of MIDI files into sliced, split training sets.
