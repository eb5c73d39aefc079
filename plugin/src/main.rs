//! The standalone build: `cargo run -p latent_live --bin latent-live`.

use latent_live::LatentLive;

fn main() {
    nice_plug::nice_export_standalone::<LatentLive>();
}
