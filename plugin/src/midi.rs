//! MIDI files to monophonic 16th-note melodies and back.
