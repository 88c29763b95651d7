//! Splitting a token stream into parallel streams and BPTT segments.
//!
//! The `n` tokens of a split give `n - 1` predictions (every token but the
//! first is a target exactly once). They are cut into `streams` contiguous
//! streams of `ceil((n - 1) / streams)` steps; the last stream is padded with
//! [`IGNORE`] targets, which count neither in the loss nor in the perplexity.
//! Nothing is dropped, unlike readers that discard the remainder.

/// Target id that is skipped by the loss and by perplexity.
pub const IGNORE: u32 = u32::MAX;

/// One BPTT segment, time-major: entry `t * streams + s` is step `t` of stream `s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub steps: usize,
    pub streams: usize,
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
}

impl Segment {
    /// Number of real (non-padding) targets.
    pub fn target_count(&self) -> usize {
        self.targets.iter().filter(|&&t| t != IGNORE).count()
    }
}

/// All segments of one pass over a split.
#[derive(Debug, Clone)]
pub struct Segments<'a> {
    tokens: &'a [u32],
    streams: usize,
    bptt: usize,
    stream_len: usize,
}

impl<'a> Segments<'a> {
    pub fn new(tokens: &'a [u32], streams: usize, bptt: usize) -> Self {
        assert!(streams >= 1 && bptt >= 1);
        let predictions = tokens.len().saturating_sub(1);
        Self {
            tokens,
            streams,
            bptt,
            stream_len: predictions.div_ceil(streams),
        }
    }

    pub fn len(&self) -> usize {
        self.stream_len.div_ceil(self.bptt)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Segment `index` (0-based).
    pub fn get(&self, index: usize) -> Segment {
        let predictions = self.tokens.len().saturating_sub(1);
        let t0 = index * self.bptt;
        let steps = self.bptt.min(self.stream_len - t0);
        let mut inputs = Vec::with_capacity(steps * self.streams);
        let mut targets = Vec::with_capacity(steps * self.streams);
        for t in t0..t0 + steps {
            for s in 0..self.streams {
                let p = s * self.stream_len + t;
                if p < predictions {
                    inputs.push(self.tokens[p]);
                    targets.push(self.tokens[p + 1]);
                } else {
                    inputs.push(0);
                    targets.push(IGNORE);
                }
            }
        }
        Segment {
            steps,
            streams: self.streams,
            inputs,
            targets,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Segment> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_token_after_the_first_is_a_target_exactly_once(
            n in 0usize..300, streams in 1usize..9, bptt in 1usize..12
        ) {
            let tokens: Vec<u32> = (0..n as u32).collect();
            let segs = Segments::new(&tokens, streams, bptt);
            let mut seen = Vec::new();
            for seg in segs.iter() {
                prop_assert_eq!(seg.inputs.len(), seg.steps * streams);
                for (i, &t) in seg.targets.iter().enumerate() {
                    if t != IGNORE {
                        // inputs are the token right before their target
                        prop_assert_eq!(seg.inputs[i] + 1, t);
                        seen.push(t);
                    }
                }
            }
            seen.sort_unstable();
            let expected: Vec<u32> = (1..n as u32).collect();
            prop_assert_eq!(seen, expected);
        }
    }

    #[test]
    fn streams_are_contiguous_and_time_major() {
        let tokens: Vec<u32> = (0..9).collect();
        let segs = Segments::new(&tokens, 2, 3);
        // 8 predictions, 2 streams of 4 steps: stream 0 = 0..4, stream 1 = 4..8
        assert_eq!(segs.len(), 2);
        let s0 = segs.get(0);
        assert_eq!(s0.inputs, [0, 4, 1, 5, 2, 6]);
        assert_eq!(s0.targets, [1, 5, 2, 6, 3, 7]);
        let s1 = segs.get(1);
        assert_eq!(
            (s1.steps, s1.inputs.clone(), s1.targets.clone()),
            (1, vec![3, 7], vec![4, 8])
        );
    }
}
