//! The encoder of `/metrics` answers: families built sample by sample,
//! encoded chunk by chunk with the `prometheus` crate's text encoder (which
//! owns the format and the escaping of label values), and handed on piece
//! by piece.

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

/// Samples built and encoded at a time: a family's samples are encoded in
/// chunks of this many, reusing the same buffers, so a fleet's family never
/// exists whole (100,000 sessions make 100,000 samples per family) and the
/// chunk being encoded stays in the CPU's cache.
const CHUNK: usize = 512;

/// Builds metric families and encodes them with the `prometheus` crate's
/// text encoder as they go. A family larger than a chunk is encoded chunk by
/// chunk; every chunk after the first leaves out the `# TYPE` line the
/// encoder writes for it, so the family reads as one.
pub(super) struct Families {
    /// Encoded text not yet handed on.
    body: Vec<u8>,
    /// Where full pieces of the answer go; `false` once nobody listens.
    sink: Sink,
    /// Nobody listens any more: the rest is not built.
    stopped: bool,
    /// The family being built; its samples are reused chunk after chunk.
    current: MetricFamily,
    /// How many of its samples the current chunk holds.
    filled: usize,
    /// Whether the current family already wrote its header.
    continued: bool,
    /// A continuation chunk, before its header line is left out.
    scratch: Vec<u8>,
    encoder: TextEncoder,
    failed: bool,
}

/// Takes each piece of an answer as it is encoded.
pub(super) type Sink = Box<dyn FnMut(Vec<u8>) -> bool + Send>;

/// The answer is handed on in pieces of about this many bytes, so that a
/// fleet's 40 MB answer is sent while it is being built and never held
/// whole.
const PIECE: usize = 256 * 1024;

impl Families {
    pub(super) fn new(sink: Sink) -> Self {
        Self {
            body: Vec::with_capacity(PIECE + 64 * 1024),
            sink,
            stopped: false,
            current: MetricFamily::default(),
            filled: 0,
            continued: false,
            scratch: Vec::new(),
            encoder: TextEncoder::new(),
            failed: false,
        }
    }

    /// Encodes the samples held for the current family.
    fn flush(&mut self) {
        if self.filled == 0 {
            return;
        }
        self.current.mut_metric().truncate(self.filled);
        self.filled = 0;
        if self.stopped {
            return;
        }
        let encoded = if self.continued {
            self.scratch.clear();
            let encoded = self
                .encoder
                .encode(std::slice::from_ref(&self.current), &mut self.scratch);
            // Without help, the header is the one `# TYPE` line.
            let header = self
                .scratch
                .iter()
                .position(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            self.body.extend_from_slice(&self.scratch[header..]);
            encoded
        } else {
            self.encoder
                .encode(std::slice::from_ref(&self.current), &mut self.body)
        };
        if let Err(e) = encoded {
            tracing::error!(error = %e, family = self.current.name(), "encoding metrics failed");
            self.failed = true;
        }
        if !self.continued {
            self.continued = true;
            self.current.set_help(String::new());
        }
        if self.body.len() >= PIECE {
            self.hand_on();
        }
    }

    /// Sets the value of the sample at `filled` and counts it.
    fn set_value(&mut self, value: f64) {
        let counter = self.current.get_field_type() == MetricType::COUNTER;
        let m = &mut self.current.mut_metric()[self.filled];
        if counter {
            let mut c = Counter::default();
            c.set_value(value);
            m.set_counter(c);
        } else {
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        self.counted();
    }

    /// Counts the sample just placed; a full chunk is encoded.
    fn counted(&mut self) {
        self.filled += 1;
        if self.filled == CHUNK {
            self.flush();
        }
    }

    /// Hands the text encoded so far to the sink.
    fn hand_on(&mut self) {
        if self.body.is_empty() || self.stopped {
            return;
        }
        let piece = std::mem::replace(&mut self.body, Vec::with_capacity(PIECE + 64 * 1024));
        self.stopped = !(self.sink)(piece);
    }

    /// Starts a family (encoding what is left of the one before).
    pub(super) fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        self.flush();
        self.continued = false;
        self.current.set_name(name.to_owned());
        self.current.set_help(help.to_owned());
        self.current.set_field_type(kind);
    }

    /// Adds a sample with these labels (names are static, values escaped by
    /// the encoder) to the current family.
    pub(super) fn sample<'a>(
        &mut self,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
        value: f64,
    ) {
        let metrics = self.current.mut_metric();
        if self.filled == metrics.len() {
            metrics.push(Metric::default());
        }
        // Filled in place: a sample's object is a few hundred bytes, and
        // moving it for each of a fleet's samples showed in profiles.
        let m = &mut metrics[self.filled];
        let mut pairs = m.take_label();
        let mut n = 0;
        for (name, value) in labels {
            if n == pairs.len() {
                pairs.push(LabelPair::default());
            }
            let pair = &mut pairs[n];
            if pair.name() != name {
                pair.set_name(name.to_owned());
            }
            pair.set_value(value.to_owned());
            n += 1;
        }
        pairs.truncate(n);
        m.set_label(pairs);
        self.set_value(value);
    }

    /// Adds a built sample (a histogram's) to the current family.
    pub(super) fn metric(&mut self, m: Metric) {
        let metrics = self.current.mut_metric();
        if self.filled == metrics.len() {
            metrics.push(m);
        } else {
            metrics[self.filled] = m;
        }
        self.counted();
    }

    /// Families gathered elsewhere (our own registry), encoded as they are.
    pub(super) fn extend(&mut self, families: Vec<MetricFamily>) {
        self.flush();
        let families: Vec<MetricFamily> = families
            .into_iter()
            .filter(|f| !f.get_metric().is_empty())
            .collect();
        if let Err(e) = self.encoder.encode(&families, &mut self.body) {
            tracing::error!(error = %e, "encoding metrics failed");
            self.failed = true;
        }
    }

    /// Encodes and hands on what is left; `false` when encoding failed
    /// (logged).
    pub(super) fn finish(mut self) -> bool {
        self.flush();
        self.hand_on();
        !self.failed
    }
}
