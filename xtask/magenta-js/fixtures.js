// Writes the magenta.js equivalence fixtures: small random-weight checkpoints in both
// formats, and what magenta.js computes with them.
//
//   node fixtures.js ../../plugin/tests/fixtures/magenta
//
// Every folder holds a checkpoint and an `expected.json`:
//   inputs  melodies as class indices (0 no event, 1 note off, 2.. pitch 21..108)
//   mu      magenta.js's encodeTensors(inputs) (absent for decoder-only checkpoints)
//   z       the latent vectors decoded: the mus, then prior samples
//   greedy  magenta.js's greedy decodeTensors(z), as class indices
//   notes   magenta.js's decode(z): [pitch, quantizedStartStep, quantizedEndStep] per note
// The Rust tests (plugin/tests/magenta.rs) import each checkpoint and must match the notes
// exactly and mu within 1e-4.

'use strict';

const fs = require('fs');
const path = require('path');
const ck = require('./checkpoint');

const MELODIES = 8;
const PRIOR_SAMPLES = 8;

// Melody-like inputs: mostly held notes and steps, some rests.
function melodies(steps, seed) {
  const r = ck.rng(seed);
  return Array.from({ length: MELODIES }, () => {
    let pitch = 60 + Math.floor(r.uniform() * 12);
    return Array.from({ length: steps }, (_, t) => {
      const u = r.uniform();
      if (t === 0 || u < 0.35) {
        pitch = Math.min(96, Math.max(40, pitch + Math.round((r.uniform() - 0.5) * 10)));
        return pitch - ck.MIN_PITCH + 2;
      }
      return u < 0.45 ? 1 : 0;
    });
  });
}

async function run(tf, mm, url, spec, inputs, z) {
  const model = new mm.MusicVAE(url);
  await model.initialize();
  const out = {};
  if (inputs) {
    const x = tf.oneHot(tf.tensor2d(inputs, undefined, 'int32'), ck.CLASSES).toFloat();
    const mu = await model.encodeTensors(x);
    out.mu = await mu.array();
    z = out.mu.concat(z);
  }
  const zt = tf.tensor2d(z);
  const decoded = await model.decodeTensors(zt);
  out.z = z;
  out.greedy = await decoded.argMax(2).array();
  const sequences = await model.decode(zt);
  out.notes = sequences.map((s) => s.notes.map((n) => [n.pitch, n.quantizedStartStep, n.quantizedEndStep]));
  model.dispose();
  return out;
}

async function main() {
  const root = path.resolve(process.argv[2] || path.join(__dirname, '../../plugin/tests/fixtures/magenta'));
  const tf = await ck.backend('cpu');
  ck.quiet();
  const mm = require('@magenta/music/node/music_vae');
  const server = await ck.serve(root);

  const models = [
    { name: 'flat', spec: { z: 16, encoder: 32, decoder: [32, 32], bars: 2, hierarchical: false }, seed: 1 },
    { name: 'hier', spec: { z: 16, encoder: 16, decoder: [24, 24], bars: 4, hierarchical: true }, seed: 2 },
  ];
  for (const { name, spec, seed } of models) {
    const steps = spec.bars * ck.STEPS_PER_BAR;
    const vars = ck.randomVariables(spec, seed);
    const inputs = melodies(steps, seed + 100);
    const r = ck.rng(seed + 200);
    const prior = Array.from({ length: PRIOR_SAMPLES }, () => Array.from({ length: spec.z }, () => r.normal()));

    const variants = [
      { dir: `${name}-f32`, write: (d) => ck.writeTfjs(d, spec, vars, { shardBytes: 16 * 1024 }) },
      { dir: `${name}-${name === 'flat' ? 'u8' : 'u16'}`, write: (d) => ck.writeTfjs(d, spec, vars, { quantization: name === 'flat' ? 'uint8' : 'uint16' }) },
    ];
    for (const { dir, write } of variants) {
      const full = path.join(root, dir);
      fs.rmSync(full, { recursive: true, force: true });
      write(full);
      const expected = await run(tf, mm, `${server.url}/${dir}`, spec, inputs, prior);
      fs.writeFileSync(path.join(full, 'expected.json'), JSON.stringify({ inputs, ...expected }));
      ck.say(`${dir}: ${expected.notes.reduce((a, n) => a + n.length, 0)} notes in ${expected.z.length} decodes`);
      if (dir === `${name}-f32`) {
        // The same weights as a deeplearn.js checkpoint: magenta.js 1.x no longer reads that
        // format, so its expectations are the float32 checkpoint's.
        const old = path.join(root, `${name}-deeplearn`);
        fs.rmSync(old, { recursive: true, force: true });
        ck.writeDeeplearn(old, spec, vars);
        fs.copyFileSync(path.join(full, 'expected.json'), path.join(old, 'expected.json'));
        ck.say(`${name}-deeplearn: the weights of ${dir}`);
      }
    }
    if (!spec.hierarchical) {
      // Decoder only: the float32 checkpoint without its encoder. magenta.js cannot load it
      // (it requires encoder/mu), so the decodes of the full model are the reference.
      const dir = path.join(root, `${name}-decoder-only`);
      fs.rmSync(dir, { recursive: true, force: true });
      const decoder = Object.fromEntries(Object.entries(vars).filter(([n]) => !n.startsWith('encoder/')));
      ck.writeTfjs(dir, spec, decoder);
      const full = JSON.parse(fs.readFileSync(path.join(root, `${name}-f32`, 'expected.json')));
      const { mu, inputs: _, ...decodes } = full;
      fs.writeFileSync(path.join(dir, 'expected.json'), JSON.stringify(decodes));
      ck.say(`${name}-decoder-only: the decodes of ${name}-f32`);
    }
  }
  server.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
