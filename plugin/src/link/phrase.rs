//! The phrase hand-off from the inference worker to the audio thread.
//!
//! A [`Phrase`] is a fixed-size `Copy` value that crosses through a triple buffer: the
//! worker always writes the newest one, `process()` always reads the newest, neither ever
//! waits, and no phrase is heap memory the audio thread would have to free. Only the
//! newest phrase matters, so there is no queue that could fill up with stale ones while
//! the audio thread is not running (between an activation and its first block, say):
//! a phrase written is a phrase delivered.

use latent_live_core::music::phrase::Phrase;

/// The two ends of the worker-to-audio hand-off.
pub fn phrase_channel() -> (PhrasePublisher, PhraseConsumer) {
    let (input, output) = triple_buffer::triple_buffer(&Phrase::EMPTY);
    (PhrasePublisher { input }, PhraseConsumer { output })
}

/// The worker's end.
pub struct PhrasePublisher {
    input: triple_buffer::Input<Phrase>,
}

impl PhrasePublisher {
    /// Makes `phrase` the newest; the audio thread takes it at its next block.
    pub fn publish(&mut self, phrase: Phrase) {
        self.input.write(phrase);
    }
}

/// The audio thread's end: wait-free, allocation-free.
pub struct PhraseConsumer {
    output: triple_buffer::Output<Phrase>,
}

impl PhraseConsumer {
    /// Copies the newest phrase into `slot` if one was published since the last call;
    /// whether one was.
    pub fn pop_newest(&mut self, slot: &mut Phrase) -> bool {
        if !self.output.update() {
            return false;
        }
        *slot = *self.output.output_buffer();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_keeps_the_newest() {
        let (mut publisher, mut consumer) = phrase_channel();
        let mut slot = Phrase::EMPTY;
        assert!(!consumer.pop_newest(&mut slot));
        // However many are published unread, the newest arrives and nothing blocks.
        for generation in 1..=100 {
            publisher.publish(Phrase::silent(32, generation));
        }
        assert!(consumer.pop_newest(&mut slot));
        assert_eq!(slot.generation, 100);
        assert!(!consumer.pop_newest(&mut slot), "each phrase arrives once");
    }
}
