//! MIDI import, melody, lead sheet and drums, then what the plugin and the trainer do
//! with an imported file: slice it into model-sized windows, decode and re-encode the events,
//! measure attributes, and export the notes again.

#![no_main]

use latent_live_core::music::melody::{self, MAX_PITCH, MIN_PITCH, NUM_CLASSES};
use latent_live_core::music::{attributes, drums, midi, Encoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    drum_import(data);
    lead_sheet_import(data);
    let Ok(imported) = midi::import(data) else {
        return;
    };
    let notes = &imported.notes;
    assert!(
        imported.steps as usize % melody::STEPS_PER_BAR == 0 && imported.steps <= midi::MAX_STEPS
    );
    for n in notes {
        assert!(
            (MIN_PITCH..=MAX_PITCH).contains(&n.pitch)
                && n.start < n.end
                && n.end <= imported.steps,
            "{n:?}"
        );
    }
    assert!(
        notes.windows(2).all(|w| w[0].end <= w[1].start),
        "sorted, one voice"
    );
    assert!(
        imported.bpm.is_finite() && imported.bpm > 0.0,
        "{}",
        imported.bpm
    );

    // Every bar count a model may have; the slices are what clip import and the corpus take.
    for bars in [1, 2, 4, 16] {
        for slice in midi::slices(&imported, bars).iter().take(8) {
            assert_eq!(slice.len(), bars * melody::STEPS_PER_BAR);
            assert!(slice.iter().all(|&e| (e as usize) < NUM_CLASSES));
            let decoded = melody::decode(slice);
            let encoded = melody::encode(&decoded, slice.len());
            assert_eq!(
                melody::decode(&encoded),
                decoded,
                "decode . encode . decode"
            );
            for name in attributes::MELODY {
                if let Some(value) = attributes::measure(Encoding::Melody, name, slice) {
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

fn lead_sheet_import(data: &[u8]) {
    let Ok(sheet) = midi::import_lead_sheet(data) else {
        return;
    };
    assert_eq!(sheet.chords.len(), sheet.melody.steps as usize);
    for bars in [1, 2, 4] {
        for (events, chords) in midi::lead_sheet_slices(&sheet, bars).iter().take(8) {
            assert_eq!(events.len(), bars * melody::STEPS_PER_BAR);
            assert_eq!(chords.len(), events.len());
            assert!(chords.iter().any(Option::is_some));
        }
    }
    let exported =
        midi::export_lead_sheet(&sheet.melody.notes, 100, &sheet.chords, sheet.melody.bpm);
    let again = midi::import_lead_sheet(&exported).expect("an exported lead sheet imports");
    assert_eq!(
        again.melody.notes, sheet.melody.notes,
        "the melody comes back"
    );
    assert_eq!(again.chords, sheet.chords, "and its chords");
}

fn drum_import(data: &[u8]) {
    let Ok(imported) = midi::import_drums(data) else {
        return;
    };
    assert!(
        imported.steps as usize % melody::STEPS_PER_BAR == 0 && imported.steps <= midi::MAX_STEPS
    );
    assert!(
        imported.hits.windows(2).all(|w| w[0] < w[1]),
        "sorted, one hit per class and step"
    );
    assert!(imported
        .hits
        .iter()
        .all(|h| h.step < imported.steps && (h.class as usize) < drums::NUM_DRUM_CLASSES));
    assert!(
        imported.bpm.is_finite() && imported.bpm > 0.0,
        "{}",
        imported.bpm
    );
    for bars in [1, 2, 4] {
        for window in midi::drum_slices(&imported, bars).iter().take(8) {
            assert_eq!(window.len(), bars * melody::STEPS_PER_BAR);
            assert!(window.iter().all(|&e| (e as usize) < drums::NUM_CLASSES));
            assert_eq!(
                drums::encode(&drums::decode(window), window.len()),
                *window,
                "encode . decode"
            );
            for name in attributes::DRUMS {
                let value =
                    attributes::measure(Encoding::Drums, name, window).expect("a drum attribute");
                assert!(value.is_finite() && value >= 0.0, "{name}: {value}");
            }
        }
    }
    let exported = midi::export_drums(
        &imported.hits,
        imported.bpm,
        &drums::GM_NOTES,
        drums::accent,
    );
    let again = midi::import_drums(&exported).expect("an exported groove imports");
    assert_eq!(
        again.hits, imported.hits,
        "export then import keeps the hits"
    );
}
