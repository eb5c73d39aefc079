// Writes the magenta.js equivalence fixtures: small random-weight checkpoints in both
// formats, and what magenta.js computes with them.
//
//   node fixtures.js ../../core/tests/fixtures/magenta
//
// Every folder holds a checkpoint and an `expected.json`:
//   inputs  the encoded phrases as class indices: melodies (0 no event, 1 note off,
//           2.. pitch 21..108), or drum patterns (`drums-*`: bit c set when drum class c
//           is hit, 0..511)
//   inputNotes  drum patterns only: the inputs as [pitch, quantizedStartStep] drum notes,
//           which magenta.js's DrumsConverter reads into the same drums
//   mu      magenta.js's encodeTensors of the inputs (one-hot melodies, or Magenta's drum
//           roll) (absent for decoder-only checkpoints)
//   z       the latent vectors decoded: the mus, then prior samples
//   greedy  magenta.js's greedy decodeTensors(z), as class indices
//   notes   magenta.js's decode(z): [pitch, quantizedStartStep, quantizedEndStep] per note
//   chords  chord models (`*-chords-*`, as mel_chords: a PitchChordEncoder in config.json):
//           the chord progression (magenta.js's chord symbols) every encode and decode
//           above was given, spread evenly over the steps as magenta.js spreads it
//   like    models with melody controls (`*-multicontrol-*`, extraControls in config.json):
//           the melody (as class indices) whose controls every decode was given; each
//           input was encoded with its own
// The Rust tests (core/tests/magenta.rs) import each checkpoint and must match the
// decodes and notes exactly and mu within 1e-4.
//
// The groove folders (`groove-*`, GrooVAE's GrooveConverter and GrooveDecoder) hold instead:
//   qpm     the tempo of the input performances
//   inputNotes  the performances encoded, [pitch, velocity, startTime] per note (seconds)
//   input   magenta.js's toTensor of each: the rows its encoder reads, [step][27]
//   mu      magenta.js's encode of the performances
//   z       the latent vectors decoded: the mus, then prior samples
//   rows    magenta.js's greedy decodeTensors(z): per step 9 hits (0 or 1), 9 velocities
//           (a sigmoid) and 9 offsets (a tanh)
//   decodeQpm, notes  magenta.js's decode(z) at that tempo: [pitch, velocity, startTime,
//           endTime] per note
// The Rust tests must read the same rows from the notes, match mu within 1e-4, the hits
// exactly, the velocities and offsets within 1e-4, and the notes.

'use strict';

const fs = require('fs');
const path = require('path');
const ck = require('./checkpoint');

const MELODIES = 8;

// magenta.js's melody controls (MelodyRhythm, MelodyShape, MelodyRegister), which its
// node bundle does not export: its own ES module source, run with tfjs.
function melodyControls(tf) {
  const src = fs.readFileSync(require.resolve('@magenta/music/esm/core/melodies.js'), 'utf8')
    .replace(/^import .*$/gm, '')
    .replace(/^export /gm, '');
  return new Function('tf', 'NoteSequence', 'sequences', `${src}\nreturn { Melody, MelodyRhythm, MelodyShape, MelodyRegister };`)(tf);
}
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

// Pitches for each drum class that magenta.js's DEFAULT_DRUM_PITCH_CLASSES and Magenta's
// newer DEFAULT_DRUM_TYPE_PITCHES (Latent Live's) both put in that class; the first is the
// one played back.
const DRUM_PITCHES = [[36, 35], [38, 40, 37], [42, 44], [46], [45, 41], [48, 47], [50], [49, 57], [51, 59]];
// magenta.js's DEFAULT_DRUM_PITCH_CLASSES (core/constants.ts), which the hierarchical drum
// fixtures name in their converter spec.
const MAGENTA_JS_DRUM_PITCH_CLASSES = [
  [36, 35],
  [38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85],
  [42, 44, 54, 68, 69, 70, 71, 73, 78, 80],
  [46, 67, 72, 74, 79, 81],
  [45, 29, 41, 61, 64, 84],
  [48, 47, 60, 63, 77, 86, 87],
  [50, 30, 43, 62, 76, 83],
  [49, 55, 57, 58],
  [51, 52, 53, 59, 82],
];

// Drum-like patterns: kick on the beats, snare on the backbeats, hats on the 8ths, the
// odd tom fill and crash; the last pattern is silence (every step "no hits").
// Returns {inputs: class indices per step, notes: [pitch, step] per drum note}.
function drumPatterns(steps, seed) {
  const r = ck.rng(seed);
  const hit = (p) => r.uniform() < p;
  const patterns = Array.from({ length: MELODIES - 1 }, () => {
    const events = Array.from({ length: steps }, (_, t) => {
      const beat = t % 16;
      const classes = [
        beat % 8 === 0 ? hit(0.9) : hit(beat % 2 === 0 ? 0.2 : 0.05), // kick
        beat % 8 === 4 ? hit(0.85) : hit(0.06), // snare
        beat % 2 === 0 ? hit(0.8) : hit(0.15), // closed hi-hat
        beat % 4 === 2 && hit(0.12), // open hi-hat
        ...[0, 1, 2].map(() => hit(beat >= 12 ? 0.15 : 0.02)), // toms, mostly in fills
        t === 0 ? hit(0.5) : hit(0.02), // crash
        hit(0.04), // ride
      ];
      return classes.reduce((event, on, c) => event | (on ? 1 << c : 0), 0);
    });
    return events;
  });
  patterns.push(Array(steps).fill(0));
  const notes = patterns.map((events) => events.flatMap((event, step) =>
    DRUM_PITCHES.flatMap((pitches, c) => (event >> c & 1 ? [[pitches[Math.floor(r.uniform() * pitches.length)], step]] : []))));
  return { inputs: patterns, notes };
}

// Drum performances for the groove models, at `qpm`: kick, snare and hats around the grid,
// every note up to 0.4 of a step early or late; in the first, a kick early before the
// first step, a snare flam (a quiet grace note a quarter step before its stroke, on the
// same step: the louder is kept) and a ride late on the last step; and a note of a pitch
// in none of the nine classes (which magenta.js drops), unless the model taps (its tapify
// reads every pitch). The last performance is silence. No two notes on one step share a
// velocity: which of equals wins differs between Magenta, magenta.js and Latent Live.
function performances(count, steps, qpm, seed, { unknownPitch }) {
  const r = ck.rng(seed);
  const hit = (p) => r.uniform() < p;
  const seconds = 60 / qpm / ck.STEPS_PER_QUARTER;
  const sequences = Array.from({ length: count - 1 }, (_, i) => {
    const notes = [];
    const velocities = new Map();
    const play = (pitch, time, velocity) => {
      const step = Math.floor(time + 0.5);
      const taken = velocities.get(step) || new Set();
      if (velocity === undefined) {
        do velocity = 20 + Math.floor(r.uniform() * 108); while (taken.has(velocity));
      }
      while (taken.has(velocity)) velocity -= 1;
      taken.add(velocity);
      velocities.set(step, taken);
      notes.push({ pitch, velocity, startTime: time * seconds, endTime: (time + 1) * seconds, isDrum: true });
      return velocity;
    };
    const off = () => (r.uniform() - 0.5) * 0.8;
    const pitch = (c) => DRUM_PITCHES[c][Math.floor(r.uniform() * DRUM_PITCHES[c].length)];
    for (let t = 0; t < steps; t++) {
      const beat = t % 16;
      if (beat % 8 === 0 ? hit(0.9) : hit(0.1)) play(pitch(0), i === 0 && t === 0 ? -0.3 : t + off());
      if (i === 0 && t === 12) {
        const stroke = play(pitch(1), t + 0.05, 100 + Math.floor(r.uniform() * 27));
        play(pitch(1), t - 0.25, stroke - 40);
      } else if (beat % 8 === 4 ? hit(0.85) : hit(0.08)) {
        play(pitch(1), t + off());
      }
      if (beat % 2 === 0 ? hit(0.8) : hit(0.15)) play(pitch(2), t + off());
      if (beat % 4 === 2 && hit(0.15)) play(pitch(3), t + off());
      if (beat >= 12 && hit(0.2)) play(pitch(4 + Math.floor(r.uniform() * 3)), t + off());
      if (t === 0 && hit(0.5)) play(pitch(7), t + off());
    }
    if (i === 0) play(pitch(8), steps - 1 + 0.35);
    if (unknownPitch && i === 1) play(UNKNOWN_PITCH, 6 + off());
    notes.sort((a, b) => a.startTime - b.startTime);
    return { notes, tempos: [{ time: 0, qpm }], totalTime: steps * seconds };
  });
  sequences.push({ notes: [], tempos: [{ time: 0, qpm }], totalTime: steps * seconds });
  return sequences;
}

// A pitch in none of the nine classes, magenta.js's or Latent Live's.
const UNKNOWN_PITCH = 25;
// The groove fixtures' tempos, the performances' and the decodes': neither is magenta.js's
// default 120, so that the tests convert between seconds and steps as magenta.js does.
const PERFORMANCE_QPM = 110;
const DECODE_QPM = 96;

// f32 values to 7 significant digits, to keep the fixtures small (the tests compare
// within 1e-4).
function round(x) {
  return Array.isArray(x) ? x.map(round) : Number(x.toPrecision(7));
}

async function runGroove(tf, mm, url, sequences, prior, decodeQpm) {
  const model = new mm.MusicVAE(url);
  await model.initialize();
  const out = { inputNotes: sequences.map((s) => s.notes.map((n) => [n.pitch, n.velocity, n.startTime])) };
  out.input = round(await Promise.all(sequences.map((s) => model.dataConverter.toTensor(s).array())));
  out.mu = await (await model.encode(sequences)).array();
  out.z = out.mu.concat(prior);
  const zt = tf.tensor2d(out.z);
  // Without a temperature, magenta.js's GrooveDecoder hits where the sigmoid passes 0.5.
  out.rows = round(await (await model.decodeTensors(zt)).array());
  out.decodeQpm = decodeQpm;
  const decoded = await model.decode(zt, undefined, undefined, ck.STEPS_PER_QUARTER, decodeQpm);
  out.notes = decoded.map((s) => s.notes.map((n) => [n.pitch, n.velocity, ...round([n.startTime, n.endTime])]));
  model.dispose();
  return out;
}

// Magenta's DrumsConverter input (`roll_input`): each step's 9 drum bits and a "no hits" bit.
function roll(events) {
  return events.map((event) => Array.from({ length: ck.DRUM_CLASSES }, (_, c) => (event >> c) & 1).concat([event === 0 ? 1 : 0]));
}

// magenta.js 1.23.1's DrumsConverter.toTensor reads the drums of each step as Magenta does,
// but sets the "no hits" bit one step early, and never on the last step: its
// `buffer.set(1, step, -1)` writes the previous row's last column. Google's models were
// trained on Magenta's roll, so that is what the fixtures encode; this checks that
// magenta.js's reading differs from it in that bit alone.
async function checkDrumsConverter(model, sequences, inputs) {
  for (const [i, sequence] of sequences.entries()) {
    const js = await model.dataConverter.toTensor(sequence).array();
    const events = inputs[i];
    roll(events).forEach((want, t) => {
      const early = t + 1 < events.length && events[t + 1] === 0 ? 1 : 0;
      if (JSON.stringify(js[t]) !== JSON.stringify(want.slice(0, ck.DRUM_CLASSES).concat([early]))) {
        throw new Error(`magenta.js's DrumsConverter read pattern ${i} step ${t} as ${js[t]}, Magenta's roll is ${want}`);
      }
    });
  }
}

// `encode(model, controls)` returns magenta.js's mu of the inputs, or nothing for
// decoder-only models; `controls`, magenta.js's controlArgs (a chord progression), go to
// every encode and decode.
async function run(tf, mm, url, encode, z, controls) {
  const model = new mm.MusicVAE(url);
  await model.initialize();
  const out = {};
  const mu = await encode(model, controls);
  if (mu) {
    out.mu = await mu.array();
    z = out.mu.concat(z);
  }
  const zt = tf.tensor2d(z);
  const decoded = await model.decodeTensors(zt, undefined, controls);
  out.z = z;
  out.greedy = await decoded.argMax(2).array();
  const sequences = await model.decode(zt, undefined, controls);
  out.notes = sequences.map((s) => s.notes.map((n) => [n.pitch, n.quantizedStartStep, n.quantizedEndStep]));
  model.dispose();
  return out;
}

async function main() {
  const root = path.resolve(process.argv[2] || path.join(__dirname, '../../core/tests/fixtures/magenta'));
  const tf = await ck.backend('cpu');
  ck.quiet();
  const mm = require('@magenta/music/node/music_vae');
  const server = await ck.serve(root);

  // Each model is written as the TF.js variants listed (`shardBytes` small enough to split
  // the float32 ones across shards) and as a deeplearn.js checkpoint of the weights
  // magenta.js read from one of them: magenta.js 1.x no longer reads that format, so its
  // expectations are that variant's.
  const f32 = ['f32', { shardBytes: 16 * 1024 }];
  const models = [
    { name: 'flat', spec: { z: 16, encoder: 32, decoder: [32, 32], bars: 2, hierarchical: false }, seed: 1, variants: [f32, ['u8', { quantization: 'uint8' }]], deeplearn: 'f32' },
    { name: 'hier', spec: { z: 16, encoder: 16, decoder: [24, 24], bars: 4, hierarchical: true }, seed: 2, variants: [f32, ['u16', { quantization: 'uint16' }]], deeplearn: 'f32' },
    // Drums keep the real depths (a 10-wide roll in, 512 classes out) on tiny layers.
    { name: 'drums-flat', spec: { z: 8, encoder: 16, decoder: [16, 16], bars: 2, hierarchical: false, encoding: 'drums' }, seed: 3, variants: [f32], deeplearn: 'f32' },
    // As drums_4bar_med_q2: hierarchical, 4 bars, uint16.
    {
      name: 'drums-hier',
      spec: { z: 8, encoder: 16, decoder: [16, 16], bars: 4, hierarchical: true, encoding: 'drums', pitchClasses: MAGENTA_JS_DRUM_PITCH_CLASSES },
      seed: 4,
      variants: [['u16', { quantization: 'uint16' }]],
      deeplearn: 'u16',
    },
    // As mel_16bar_small_q2: 16 bars, a BiLSTM per bar under one over the bars, and a
    // conductor over the 16 bar decoders (magenta.js reads numSegments as both). The
    // mel_4bar_* checkpoints have the shape of `hier`.
    { name: 'hier16', spec: { z: 8, encoder: 8, decoder: [8, 8], bars: 16, hierarchical: true }, seed: 10, variants: [['u8', { quantization: 'uint8' }]] },
    // As mel_chords: melodies over chords, flat; and a hierarchical one, whose chords go to
    // the bar decoder bar by bar. The progressions have sevenths, sus and diminished chords,
    // and chords of 6 and 7 steps (magenta.js spreads them evenly). No "N.C.": magenta.js
    // 1.23.1's PitchChordEncoder cannot stack it with chords (an int32 one-hot among
    // float32 encodings).
    {
      name: 'flat-chords',
      spec: { z: 16, encoder: 32, decoder: [32, 32], bars: 2, hierarchical: false, chords: true },
      seed: 8,
      variants: [f32],
      chords: ['C', 'Am', 'Dm', 'Fmaj7', 'G7'],
    },
    {
      name: 'hier-chords',
      spec: { z: 16, encoder: 16, decoder: [24, 24], bars: 4, hierarchical: true, chords: true },
      seed: 9,
      variants: [['u16', { quantization: 'uint16' }]],
      chords: ['Dm7', 'G7', 'Cmaj7', 'A7', 'Dm', 'Bdim', 'Esus4', 'E7', 'Am'],
    },
    // As the mel_2bar_multicontrol family: chords, then magenta.js's three melody controls.
    {
      name: 'flat-multicontrol',
      spec: {
        z: 16,
        encoder: 32,
        decoder: [32, 32],
        bars: 2,
        hierarchical: false,
        chords: true,
        extraControls: [
          { name: 'rhythm', depth: 1 },
          { name: 'shape', depth: 3 },
          { name: 'register', depth: 4, boundaryPitches: [48, 60, 72] },
        ],
      },
      seed: 11,
      variants: [f32],
      chords: ['Am', 'F', 'C', 'G7'],
    },
  ];
  const controlClasses = melodyControls(tf);
  for (const { name, spec, seed, variants, deeplearn, chords } of models) {
    let controls = chords ? { chordProgression: chords } : undefined;
    const steps = spec.bars * ck.STEPS_PER_BAR;
    const vars = ck.randomVariables(spec, seed);
    let inputs;
    let encode;
    let extra = {};
    if (spec.encoding === 'drums') {
      const patterns = drumPatterns(steps, seed + 100);
      inputs = patterns.inputs;
      extra = { inputNotes: patterns.notes };
      const sequences = patterns.notes.map((notes) => ({
        notes: notes.map(([pitch, step]) => ({ pitch, quantizedStartStep: step, quantizedEndStep: step + 1, isDrum: true })),
        quantizationInfo: { stepsPerQuarter: 4 },
        totalQuantizedSteps: steps,
      }));
      encode = async (model) => {
        await checkDrumsConverter(model, sequences, inputs);
        return model.encodeTensors(tf.tensor3d(inputs.map(roll)));
      };
    } else {
      inputs = melodies(steps, seed + 100);
      const oneHot = (rows) => tf.oneHot(tf.tensor2d(rows, undefined, 'int32'), ck.CLASSES).toFloat();
      encode = (model, controls) => model.encodeTensors(oneHot(inputs), controls);
      if (chords) extra = { chords };
      if (spec.extraControls) {
        const { Melody, MelodyRhythm, MelodyShape, MelodyRegister } = controlClasses;
        const extractor = (c) => ({ rhythm: () => new MelodyRhythm(), shape: () => new MelodyShape(), register: () => new MelodyRegister(c.boundaryPitches) })[c.name]();
        const controlsOf = (events) => ({
          chordProgression: chords,
          extraControls: Object.fromEntries(spec.extraControls.map((c) => [c.name, extractor(c).extract(new Melody(events, ck.MIN_PITCH, ck.MAX_PITCH))])),
        });
        const like = melodies(steps, seed + 300)[0];
        controls = controlsOf(like);
        // As Magenta trains them, each melody is encoded with its own controls.
        encode = async (model) => {
          const mus = [];
          for (const input of inputs) mus.push(await model.encodeTensors(oneHot([input]), controlsOf(input)));
          return tf.concat(mus, 0);
        };
        extra = { chords, like };
      }
    }
    const r = ck.rng(seed + 200);
    const prior = Array.from({ length: PRIOR_SAMPLES }, () => Array.from({ length: spec.z }, () => r.normal()));

    for (const [variant, options] of variants) {
      const dir = `${name}-${variant}`;
      const full = path.join(root, dir);
      fs.rmSync(full, { recursive: true, force: true });
      const seen = ck.writeTfjs(full, spec, vars, options);
      const expected = await run(tf, mm, `${server.url}/${dir}`, encode, prior, controls);
      fs.writeFileSync(path.join(full, 'expected.json'), JSON.stringify({ inputs, ...extra, ...expected }));
      ck.say(`${dir}: ${expected.notes.reduce((a, n) => a + n.length, 0)} notes in ${expected.z.length} decodes`);
      if (variant === deeplearn) {
        const old = path.join(root, `${name}-deeplearn`);
        fs.rmSync(old, { recursive: true, force: true });
        ck.writeDeeplearn(old, spec, seen);
        fs.copyFileSync(path.join(full, 'expected.json'), path.join(old, 'expected.json'));
        ck.say(`${name}-deeplearn: the weights magenta.js read from ${dir}`);
      }
    }
    if (name === 'flat') {
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

  // GrooVAE's shapes on tiny layers: groovae_2bar_humanize, tap2drum_2bar and groovae_4bar
  // (which names magenta.js's pitch classes, as a converter spec may).
  const grooves = [
    { name: 'groove-humanize', spec: { humanize: true, bars: 2 }, seed: 5, variants: [f32], performances: 4, prior: 2 },
    { name: 'groove-tap', spec: { tapify: true, bars: 2 }, seed: 6, variants: [f32], performances: 4, prior: 2 },
    {
      name: 'groove-4bar',
      spec: { bars: 4, pitchClasses: MAGENTA_JS_DRUM_PITCH_CLASSES },
      seed: 7,
      variants: [['u16', { quantization: 'uint16' }]],
      performances: 3,
      prior: 1,
    },
  ];
  for (const { name, spec: shape, seed, variants, performances: count, prior: samples } of grooves) {
    const spec = { z: 8, encoder: 16, decoder: [16, 16], hierarchical: false, encoding: 'groove', ...shape };
    const steps = spec.bars * ck.STEPS_PER_BAR;
    const vars = ck.randomVariables(spec, seed);
    const sequences = performances(count, steps, PERFORMANCE_QPM, seed + 100, { unknownPitch: !spec.tapify });
    const r = ck.rng(seed + 200);
    const prior = Array.from({ length: samples }, () => Array.from({ length: spec.z }, () => r.normal()));
    for (const [variant, options] of variants) {
      const dir = `${name}-${variant}`;
      const full = path.join(root, dir);
      fs.rmSync(full, { recursive: true, force: true });
      ck.writeTfjs(full, spec, vars, options);
      const expected = await runGroove(tf, mm, `${server.url}/${dir}`, sequences, prior, DECODE_QPM);
      fs.writeFileSync(path.join(full, 'expected.json'), JSON.stringify({ qpm: PERFORMANCE_QPM, ...expected }));
      ck.say(`${dir}: ${expected.notes.reduce((a, n) => a + n.length, 0)} notes in ${expected.z.length} decodes`);
    }
  }
  server.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
