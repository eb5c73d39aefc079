//! MIDI import, then what the plugin and the trainer do with an imported file: slice it
//! into model-sized windows, decode and re-encode the events, measure attributes, and
//! export the notes again.

#![no_main]

use latent_live::music::melody::{self, MAX_PITCH, MIN_PITCH, NUM_CLASSES};
use latent_live::music::{attributes, midi};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(imported) = midi::import(data) else { return };
    let notes = &imported.notes;
    assert!(imported.steps as usize % melody::STEPS_PER_BAR == 0 && imported.steps <= midi::MAX_STEPS);
    for n in notes {
        assert!((MIN_PITCH..=MAX_PITCH).contains(&n.pitch) && n.start < n.end && n.end <= imported.steps, "{n:?}");
    }
    assert!(notes.windows(2).all(|w| w[0].end <= w[1].start), "sorted, one voice");
    assert!(imported.bpm.is_finite() && imported.bpm > 0.0, "{}", imported.bpm);

    // Every bar count a model may have; the slices are what clip import and the corpus take.
    for bars in [1, 2, 4, 16] {
        for slice in midi::slices(&imported, bars).iter().take(8) {
            assert_eq!(slice.len(), bars * melody::STEPS_PER_BAR);
            assert!(slice.iter().all(|&e| (e as usize) < NUM_CLASSES));
            let decoded = melody::decode(slice);
            let encoded = melody::encode(&decoded, slice.len());
            assert_eq!(melody::decode(&encoded), decoded, "decode . encode . decode");
            for name in attributes::ALL {
                if let Some(value) = attributes::measure(name, slice) {
                    assert!(value.is_finite(), "{name}: {value}");
                }
            }
            let _ = melody::transpose(slice, 7);
        }
    }

    let exported = midi::export(notes, imported.bpm);
    let again = midi::import(&exported).expect("an exported file imports");
    assert_eq!(&again.notes, notes, "export then import keeps the notes");
});
