//! How the phrase is started (`Play`): by the host's transport, running free from
//! activation, or by a note held on `Trigger Channel`. Read by the audio thread
//! ([`crate::audio::start`]).

use nice_plug::prelude::*;

#[derive(Params)]
pub struct StartParams {
    #[id = "play"]
    pub mode: EnumParam<PlayMode>,
    /// With `Play` on Note Trigger, the channel whose notes start the phrase, 1 to 16.
    #[id = "trgch"]
    pub trigger_channel: IntParam,
}

impl Default for StartParams {
    fn default() -> Self {
        Self {
            mode: EnumParam::new("Play", PlayMode::HostTransport),
            trigger_channel: IntParam::new(
                "Trigger Channel",
                1,
                IntRange::Linear { min: 1, max: 16 },
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PlayMode {
    /// While the host's transport runs, on its bars.
    #[id = "host"]
    #[name = "Host Transport"]
    HostTransport,
    /// Always, from activation, at the host's tempo (120 bpm without one), in 4/4 bars
    /// counted from activation: for hosts whose transport never runs.
    #[id = "free"]
    #[name = "Free-run"]
    FreeRun,
    /// While a note is held on `Trigger Channel`: the phrase starts from its downbeat at
    /// the note (on the host's 16th grid while its transport runs), moved so that its
    /// tonic is the note.
    #[id = "trigger"]
    #[name = "Note Trigger"]
    NoteTrigger,
}
