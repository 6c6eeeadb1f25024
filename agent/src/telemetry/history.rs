//! [`History`]: the bounded in-memory store of telemetry, two rings per series.
//!
//! - **Fine ring**: one `f32` per sampler step (default 1 s) for the last hour
//!   ([`DEFAULT_FINE_SPAN_S`]). A missing sample is `NaN`, so timestamps are not
//!   stored at all: a value's time is its slot number × the step.
//! - **Coarse ring**: one bucket per minute ([`DEFAULT_COARSE_STEP_S`]) for the last
//!   24 h ([`DEFAULT_COARSE_SPAN_S`]), keeping min, max and mean, so a 3-second spike
//!   an hour ago still shows up as the bucket's max.
//!
//! Both rings are written on every sample (the coarse bucket aggregates as it goes),
//! so nothing is recomputed when a sample ages out of the fine ring.
//!
//! # Memory budget
//!
//! With the defaults a series costs 3 600 × 4 B (fine) + 1 440 × 14 B (coarse:
//! three `f32` and a `u16` count) = 34 560 B, plus its name and bookkeeping; see
//! [`BUDGET_BYTES_PER_SERIES`]. A realistic server has 100–200 series (CPU, memory,
//! 2 per disk and NIC, 20–60 sensors, a few power meters), i.e. ≈ 3.5–7 MiB; the
//! [`DEFAULT_MAX_SERIES`] cap bounds the worst case at ≈ 17 MiB.
//! [`History::accounted_bytes`] reports the structure's own heap use, and a test
//! holds 200 full series under 200 × the per-series budget.
//!
//! Series that have had no sample for the whole coarse span are evicted
//! ([`History::evict_stale`]), so a node that creates a veth per workload does not
//! grow without bound.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Default fine step, s: the sampler's default interval.
pub const DEFAULT_FINE_STEP_S: u32 = 1;
/// Default fine span, s: the issue asks for at least one hour at full resolution.
pub const DEFAULT_FINE_SPAN_S: u32 = 3_600;
/// Default coarse bucket, s: a minute keeps a 24 h chart at 1 440 points, about the
/// width of two wide terminals, so a console never needs finer data that old.
pub const DEFAULT_COARSE_STEP_S: u32 = 60;
/// Default coarse span, s: a day, so a console shows the daily cycle.
pub const DEFAULT_COARSE_SPAN_S: u32 = 86_400;
/// Default cap on distinct series. At [`BUDGET_BYTES_PER_SERIES`] each, 512 series
/// stay under ≈ 17 MiB, inside the agent's 20 MiB RSS target together with the rest.
pub const DEFAULT_MAX_SERIES: usize = 512;
/// Heap bytes one series may use with the default spans: 34 560 B of rings plus
/// room for its name, its interner entry and the per-series header.
pub const BUDGET_BYTES_PER_SERIES: usize = 35 * 1024;

/// The shape of the history. Built by the telemetry config (see
/// [`super::config::TelemetryConfig`]), which checks that the numbers fit together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryShape {
    /// Seconds per fine slot.
    pub fine_step_s: u32,
    /// Number of fine slots.
    pub fine_slots: u32,
    /// Seconds per coarse bucket; a multiple of `fine_step_s`.
    pub coarse_step_s: u32,
    /// Number of coarse buckets.
    pub coarse_slots: u32,
    /// Most series held at once; samples of further new series are dropped.
    pub max_series: usize,
}

impl Default for HistoryShape {
    fn default() -> Self {
        Self {
            fine_step_s: DEFAULT_FINE_STEP_S,
            fine_slots: DEFAULT_FINE_SPAN_S / DEFAULT_FINE_STEP_S,
            coarse_step_s: DEFAULT_COARSE_STEP_S,
            coarse_slots: DEFAULT_COARSE_SPAN_S / DEFAULT_COARSE_STEP_S,
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

/// An interned series name. Only meaningful inside one [`History`]; ids of evicted
/// series are reused, so never keep one across [`History::evict_stale`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(u32);

/// One batch of samples taken at the same moment, as the sampler produces it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// When the samples were taken, Unix seconds.
    pub unix_s: u64,
    /// `(series name, value)`; names follow the scheme in [`super`].
    pub values: Vec<(String, f64)>,
}

/// Min, max and mean of the samples in one coarse bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Smallest sample.
    pub min: f32,
    /// Largest sample.
    pub max: f32,
    /// Mean of the samples.
    pub avg: f32,
    /// How many samples went in.
    pub count: u16,
}

/// Evenly spaced fine values; `None` where no sample was taken.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FineRun {
    /// Time of `values[0]`, Unix seconds.
    pub start_unix_s: u64,
    /// Seconds between values.
    pub step_s: u32,
    /// The samples.
    pub values: Vec<Option<f32>>,
}

/// Evenly spaced coarse buckets; `None` where the bucket holds no sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoarseRun {
    /// Start of `buckets[0]`, Unix seconds.
    pub start_unix_s: u64,
    /// Seconds per bucket.
    pub step_s: u32,
    /// The buckets.
    pub buckets: Vec<Option<Bucket>>,
}

/// One series at best resolution: coarse buckets for the older part, then fine
/// samples. The coarse run ends exactly where the fine run starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesHistory {
    /// The series name.
    pub name: String,
    /// The part older than the fine ring, downsampled.
    pub coarse: CoarseRun,
    /// The recent part at full resolution.
    pub fine: FineRun,
}

/// Every series, for a console that connects late (backfill).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistorySnapshot {
    /// The newest sample time in the history, Unix seconds.
    pub latest_unix_s: u64,
    /// The series, sorted by name.
    pub series: Vec<SeriesHistory>,
}

/// The rings of one series.
#[derive(Debug)]
struct Series {
    name: Box<str>,
    fine: Box<[f32]>,
    /// Fine slot number (Unix s / step) of the newest sample; ring index is slot % len.
    last_fine: u64,
    cmin: Box<[f32]>,
    cmax: Box<[f32]>,
    cavg: Box<[f32]>,
    /// Samples per bucket; 0 marks an empty bucket.
    ccount: Box<[u16]>,
    /// Coarse bucket number of the newest sample.
    last_coarse: u64,
}

impl Series {
    fn new(name: &str, shape: &HistoryShape, fine_slot: u64, coarse_slot: u64) -> Self {
        let f = shape.fine_slots as usize;
        let c = shape.coarse_slots as usize;
        Self {
            name: name.into(),
            fine: vec![f32::NAN; f].into_boxed_slice(),
            // One before the first write, so the first write clears nothing stale.
            last_fine: fine_slot.saturating_sub(1),
            cmin: vec![0.0; c].into_boxed_slice(),
            cmax: vec![0.0; c].into_boxed_slice(),
            cavg: vec![0.0; c].into_boxed_slice(),
            ccount: vec![0; c].into_boxed_slice(),
            last_coarse: coarse_slot.saturating_sub(1),
        }
    }

    fn heap_bytes(&self) -> usize {
        self.name.len()
            + self.fine.len() * size_of::<f32>()
            + (self.cmin.len() + self.cmax.len() + self.cavg.len()) * size_of::<f32>()
            + self.ccount.len() * size_of::<u16>()
    }

    /// Writes `v` at fine slot `fs` / coarse bucket `cs`. Samples older than the
    /// newest one are refused: the coarse aggregate could not take them back out.
    fn record(&mut self, fs: u64, cs: u64, v: f32) -> bool {
        if fs < self.last_fine || cs < self.last_coarse {
            return false;
        }
        let flen = self.fine.len() as u64;
        if fs > self.last_fine {
            // Clear the slots skipped since the last write; they still hold values
            // from one ring length ago.
            let gap = (fs - self.last_fine - 1).min(flen);
            for s in (fs - gap)..fs {
                self.fine[(s % flen) as usize] = f32::NAN;
            }
            self.last_fine = fs;
        }
        self.fine[(fs % flen) as usize] = v;

        let clen = self.ccount.len() as u64;
        if cs > self.last_coarse {
            let gap = (cs - self.last_coarse - 1).min(clen);
            for s in (cs - gap)..cs {
                self.ccount[(s % clen) as usize] = 0;
            }
            let i = (cs % clen) as usize;
            self.cmin[i] = v;
            self.cmax[i] = v;
            self.cavg[i] = v;
            self.ccount[i] = 1;
            self.last_coarse = cs;
        } else {
            let i = (cs % clen) as usize;
            if self.ccount[i] == 0 {
                self.cmin[i] = v;
                self.cmax[i] = v;
                self.cavg[i] = v;
                self.ccount[i] = 1;
            } else {
                let n = self.ccount[i].saturating_add(1);
                self.cmin[i] = self.cmin[i].min(v);
                self.cmax[i] = self.cmax[i].max(v);
                // Running mean: no sum to overflow and one f32 of state.
                self.cavg[i] += (v - self.cavg[i]) / f32::from(n);
                self.ccount[i] = n;
            }
        }
        true
    }

    /// The oldest fine slot still held.
    fn first_fine(&self) -> u64 {
        (self.last_fine + 1).saturating_sub(self.fine.len() as u64)
    }

    fn fine_at(&self, slot: u64) -> Option<f32> {
        if slot > self.last_fine || slot < self.first_fine() {
            return None;
        }
        let v = self.fine[(slot % self.fine.len() as u64) as usize];
        (!v.is_nan()).then_some(v)
    }

    fn coarse_at(&self, slot: u64) -> Option<Bucket> {
        let len = self.ccount.len() as u64;
        if slot > self.last_coarse || slot + len <= self.last_coarse {
            return None;
        }
        let i = (slot % len) as usize;
        (self.ccount[i] > 0).then(|| Bucket {
            min: self.cmin[i],
            max: self.cmax[i],
            avg: self.cavg[i],
            count: self.ccount[i],
        })
    }
}

/// The bounded history of every series. See the [module docs](self).
#[derive(Debug)]
pub struct History {
    shape: HistoryShape,
    ids: HashMap<Box<str>, SeriesId>,
    series: Vec<Option<Series>>,
    free: Vec<u32>,
    latest_unix_s: u64,
    dropped_series: u64,
    dropped_late: u64,
}

impl Default for History {
    fn default() -> Self {
        Self::new(HistoryShape::default())
    }
}

impl History {
    /// An empty history of the given shape.
    pub fn new(shape: HistoryShape) -> Self {
        // A zero-length ring would divide by zero; the config refuses such shapes,
        // and this keeps a hand-built shape from doing so either.
        let shape = HistoryShape {
            fine_step_s: shape.fine_step_s.max(1),
            fine_slots: shape.fine_slots.max(1),
            coarse_step_s: shape.coarse_step_s.max(1),
            coarse_slots: shape.coarse_slots.max(1),
            max_series: shape.max_series,
        };
        Self {
            shape,
            ids: HashMap::new(),
            series: Vec::new(),
            free: Vec::new(),
            latest_unix_s: 0,
            dropped_series: 0,
            dropped_late: 0,
        }
    }

    /// The shape it was built with.
    pub fn shape(&self) -> HistoryShape {
        self.shape
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no series is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The newest sample time, Unix seconds (0 before the first sample).
    pub fn latest_unix_s(&self) -> u64 {
        self.latest_unix_s
    }

    /// Samples dropped because the series cap was reached.
    pub fn dropped_series_samples(&self) -> u64 {
        self.dropped_series
    }

    /// Samples dropped because they were older than the series' newest sample.
    pub fn dropped_late_samples(&self) -> u64 {
        self.dropped_late
    }

    /// The id of `name`, if held.
    pub fn id(&self, name: &str) -> Option<SeriesId> {
        self.ids.get(name).copied()
    }

    /// Names of every series, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.ids.keys().map(|k| &**k).collect();
        v.sort_unstable();
        v
    }

    fn slots(&self, unix_s: u64) -> (u64, u64) {
        (
            unix_s / u64::from(self.shape.fine_step_s),
            unix_s / u64::from(self.shape.coarse_step_s),
        )
    }

    /// Records one sample. Returns false when it was dropped (series cap reached,
    /// not a finite number, or older than the series' newest sample).
    pub fn record(&mut self, name: &str, unix_s: u64, value: f64) -> bool {
        let v = value as f32;
        if !v.is_finite() {
            return false;
        }
        let (fs, cs) = self.slots(unix_s);
        let id = match self.ids.get(name) {
            Some(id) => *id,
            None => {
                if self.ids.len() >= self.shape.max_series {
                    self.dropped_series += 1;
                    return false;
                }
                let s = Series::new(name, &self.shape, fs, cs);
                let id = match self.free.pop() {
                    Some(i) => {
                        self.series[i as usize] = Some(s);
                        SeriesId(i)
                    }
                    None => {
                        self.series.push(Some(s));
                        // The cap keeps the count far below u32::MAX.
                        SeriesId((self.series.len() - 1) as u32)
                    }
                };
                self.ids.insert(name.into(), id);
                id
            }
        };
        let ok = self
            .series
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .is_some_and(|s| s.record(fs, cs, v));
        if ok {
            self.latest_unix_s = self.latest_unix_s.max(unix_s);
        } else {
            self.dropped_late += 1;
        }
        ok
    }

    /// Records every value of a batch; returns how many were kept.
    pub fn record_batch(&mut self, batch: &Batch) -> usize {
        batch
            .values
            .iter()
            .filter(|(name, v)| self.record(name, batch.unix_s, *v))
            .count()
    }

    fn get(&self, name: &str) -> Option<&Series> {
        let id = self.ids.get(name)?;
        self.series.get(id.0 as usize)?.as_ref()
    }

    /// The newest sample of `name` and its time, Unix seconds.
    pub fn latest(&self, name: &str) -> Option<(u64, f32)> {
        let s = self.get(name)?;
        s.fine_at(s.last_fine)
            .map(|v| (s.last_fine * u64::from(self.shape.fine_step_s), v))
    }

    /// Everything held for `name` from `since_unix_s` on, at the best resolution
    /// available: coarse buckets up to the start of the fine ring (rounded up to a
    /// bucket boundary, so the two runs neither overlap nor leave a gap), then fine
    /// samples. Leading and trailing empty slots are trimmed.
    pub fn series_since(&self, name: &str, since_unix_s: u64) -> Option<SeriesHistory> {
        let s = self.get(name)?;
        Some(self.export(s, since_unix_s))
    }

    /// Every series from `since_unix_s` on (see [`Self::series_since`]), sorted by
    /// name: what a late-joining console needs for full graphs.
    pub fn snapshot(&self, since_unix_s: u64) -> HistorySnapshot {
        let mut series: Vec<SeriesHistory> = self
            .series
            .iter()
            .flatten()
            .map(|s| self.export(s, since_unix_s))
            .collect();
        series.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        HistorySnapshot {
            latest_unix_s: self.latest_unix_s,
            series,
        }
    }

    fn export(&self, s: &Series, since_unix_s: u64) -> SeriesHistory {
        let fstep = u64::from(self.shape.fine_step_s);
        let cstep = u64::from(self.shape.coarse_step_s);
        // The fine run starts at the first bucket boundary inside the fine ring, so
        // the coarse buckets before it are complete.
        let fine_start_s = (s.first_fine() * fstep).div_ceil(cstep) * cstep;
        // Never walk slots the ring cannot hold: `since` may be 0.
        let held_from = (s.last_coarse + 1).saturating_sub(s.ccount.len() as u64);
        let coarse_first = (since_unix_s / cstep).max(held_from);
        let coarse_end = fine_start_s / cstep; // exclusive
        let mut buckets: Vec<Option<Bucket>> =
            (coarse_first..coarse_end).map(|b| s.coarse_at(b)).collect();
        let lead = buckets.iter().take_while(|b| b.is_none()).count();
        buckets.drain(..lead);
        while buckets.last().is_some_and(Option::is_none) {
            buckets.pop();
        }
        let coarse = CoarseRun {
            start_unix_s: (coarse_first + lead as u64) * cstep,
            step_s: self.shape.coarse_step_s,
            buckets,
        };

        let fine_first = since_unix_s.max(fine_start_s).div_ceil(fstep);
        let mut values: Vec<Option<f32>> =
            (fine_first..=s.last_fine).map(|f| s.fine_at(f)).collect();
        let lead = values.iter().take_while(|v| v.is_none()).count();
        values.drain(..lead);
        while values.last().is_some_and(Option::is_none) {
            values.pop();
        }
        let fine = FineRun {
            start_unix_s: (fine_first + lead as u64) * fstep,
            step_s: self.shape.fine_step_s,
            values,
        };
        SeriesHistory {
            name: s.name.to_string(),
            coarse,
            fine,
        }
    }

    /// The oldest and newest values of `name` within the last `window_s` seconds
    /// (fine samples where held, coarse means beyond), for trend checks such as
    /// "SMART: reallocated sectors rising". `None` with fewer than two samples.
    pub fn trend(&self, name: &str, window_s: u64) -> Option<Trend> {
        let s = self.get(name)?;
        let since = self.latest_unix_s.saturating_sub(window_s);
        let h = self.export(s, since);
        let mut points = h
            .coarse
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                b.map(|b| {
                    (
                        h.coarse.start_unix_s + i as u64 * u64::from(h.coarse.step_s),
                        b.avg,
                    )
                })
            })
            .chain(h.fine.values.iter().enumerate().filter_map(|(i, v)| {
                v.map(|v| (h.fine.start_unix_s + i as u64 * u64::from(h.fine.step_s), v))
            }));
        let first = points.next()?;
        let last = points.last()?;
        Some(Trend { first, last })
    }

    /// Drops series with no sample in the whole coarse span before `now_unix_s`,
    /// freeing their memory and their ids. Returns how many were dropped.
    pub fn evict_stale(&mut self, now_unix_s: u64) -> usize {
        let span = u64::from(self.shape.coarse_step_s) * u64::from(self.shape.coarse_slots);
        let horizon = now_unix_s.saturating_sub(span);
        let fstep = u64::from(self.shape.fine_step_s);
        let mut dropped = 0;
        for (i, slot) in self.series.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|s| s.last_fine * fstep < horizon)
                && let Some(s) = slot.take()
            {
                self.ids.remove(&s.name);
                // The index came from a Vec whose length the series cap bounds.
                self.free.push(i as u32);
                dropped += 1;
            }
        }
        dropped
    }

    /// Heap bytes this history holds: the rings, the names and an estimate of the
    /// hash map's table (hashbrown keeps one control byte per bucket and at most
    /// 7/8 of its buckets full). The memory budget is stated against this figure.
    pub fn accounted_bytes(&self) -> usize {
        let rings: usize = self.series.iter().flatten().map(Series::heap_bytes).sum();
        let slots = self.series.capacity() * size_of::<Option<Series>>();
        let names: usize = self.ids.keys().map(|k| k.len()).sum();
        let table = self.ids.capacity() * 8 / 7 * (size_of::<(Box<str>, SeriesId)>() + 1);
        let free = self.free.capacity() * size_of::<u32>();
        size_of::<Self>() + rings + slots + names + table + free
    }
}

/// The ends of a series over a window, from [`History::trend`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// `(Unix s, value)` of the oldest point in the window.
    pub first: (u64, f32),
    /// `(Unix s, value)` of the newest point.
    pub last: (u64, f32),
}

impl Trend {
    /// Newest minus oldest.
    pub fn change(&self) -> f32 {
        self.last.1 - self.first.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> HistoryShape {
        HistoryShape {
            fine_step_s: 1,
            fine_slots: 120,
            coarse_step_s: 60,
            coarse_slots: 10,
            max_series: 4,
        }
    }

    const T0: u64 = 1_700_000_040; // a multiple of 60

    #[test]
    fn fine_samples_come_back_with_their_times() {
        let mut h = History::new(small());
        for i in 0..10 {
            assert!(h.record("cpu.busy_pct", T0 + i, i as f64));
        }
        let s = h.series_since("cpu.busy_pct", T0 + 3).unwrap();
        assert_eq!(s.fine.start_unix_s, T0 + 3);
        assert_eq!(
            s.fine.values,
            (3..10).map(|i| Some(i as f32)).collect::<Vec<_>>()
        );
        assert!(s.coarse.buckets.is_empty());
        assert_eq!(h.latest("cpu.busy_pct"), Some((T0 + 9, 9.0)));
    }

    #[test]
    fn gaps_are_none_not_stale_values() {
        let mut h = History::new(small());
        for i in 0..120 {
            h.record("x", T0 + i, 1.0);
        }
        // Skip 50 s: the slots in between held values from two minutes ago.
        h.record("x", T0 + 170, 2.0);
        let s = h.series_since("x", 0).unwrap();
        let at = |t: u64| s.fine.values[(t - s.fine.start_unix_s) as usize];
        assert_eq!(at(T0 + 119), Some(1.0));
        assert_eq!(at(T0 + 150), None);
        assert_eq!(at(T0 + 170), Some(2.0));
    }

    #[test]
    fn spikes_survive_downsampling() {
        let mut h = History::new(small());
        // 5 minutes at 10, with one 1-second spike to 95 in the second minute.
        for i in 0..300 {
            let v = if i == 75 { 95.0 } else { 10.0 };
            h.record("t", T0 + i, v);
        }
        let s = h.series_since("t", 0).unwrap();
        // The fine ring holds 120 s (T0+180..T0+299); before that, buckets.
        assert_eq!(s.coarse.start_unix_s, T0);
        assert_eq!(s.fine.start_unix_s, T0 + 180);
        assert_eq!(s.coarse.buckets.len(), 3);
        let b1 = s.coarse.buckets[1].unwrap();
        assert_eq!((b1.min, b1.max, b1.count), (10.0, 95.0, 60));
        assert!((b1.avg - (59.0 * 10.0 + 95.0) / 60.0).abs() < 1e-3);
        assert_eq!(s.fine.values.len(), 120);
    }

    #[test]
    fn coarse_runs_end_where_fine_starts_when_not_aligned() {
        let mut h = History::new(small());
        for i in 0..250 {
            h.record("t", T0 + i, i as f64);
        }
        let s = h.series_since("t", 0).unwrap();
        // Fine ring holds T0+130..T0+249; fine starts at the next minute, T0+180.
        assert_eq!(s.fine.start_unix_s, T0 + 180);
        assert_eq!(
            s.coarse.start_unix_s + 60 * s.coarse.buckets.len() as u64,
            T0 + 180
        );
        let b2 = s.coarse.buckets[2].unwrap();
        assert_eq!((b2.min, b2.max), (120.0, 179.0));
    }

    #[test]
    fn late_and_non_finite_samples_are_dropped() {
        let mut h = History::new(small());
        assert!(h.record("x", T0 + 10, 1.0));
        assert!(!h.record("x", T0 + 5, 1.0));
        assert!(!h.record("x", T0 + 11, f64::NAN));
        assert_eq!(h.dropped_late_samples(), 1);
        // The same second again replaces the fine value and joins the bucket.
        assert!(h.record("x", T0 + 10, 3.0));
        assert_eq!(h.latest("x"), Some((T0 + 10, 3.0)));
    }

    #[test]
    fn series_cap_drops_new_series_only() {
        let mut h = History::new(small());
        for i in 0..4 {
            assert!(h.record(&format!("s{i}"), T0, 1.0));
        }
        assert!(!h.record("s4", T0, 1.0));
        assert!(h.record("s0", T0 + 1, 1.0));
        assert_eq!(h.len(), 4);
        assert_eq!(h.dropped_series_samples(), 1);
    }

    #[test]
    fn stale_series_are_evicted_and_ids_reused() {
        let mut h = History::new(small());
        h.record("gone", T0, 1.0);
        h.record("stays", T0, 1.0);
        let old = h.id("gone").unwrap();
        // Coarse span is 600 s.
        h.record("stays", T0 + 700, 1.0);
        assert_eq!(h.evict_stale(T0 + 700), 1);
        assert_eq!(h.names(), vec!["stays"]);
        h.record("new", T0 + 701, 1.0);
        assert_eq!(h.id("new"), Some(old));
        assert!(h.series_since("gone", 0).is_none());
    }

    #[test]
    fn a_wrapped_coarse_ring_forgets_old_buckets() {
        let mut h = History::new(small());
        h.record("x", T0, 1.0);
        h.record("x", T0 + 600, 2.0); // 10 buckets later: same ring index
        let s = h.series_since("x", 0).unwrap();
        assert!(s.coarse.buckets.iter().flatten().all(|b| b.max == 2.0));
    }

    #[test]
    fn trend_sees_a_rising_counter() {
        let mut h = History::new(small());
        for i in 0..200 {
            let v = if i < 100 { 5.0 } else { 8.0 };
            h.record("disk.sda.smart_reallocated_sectors", T0 + i, v);
        }
        let t = h.trend("disk.sda.smart_reallocated_sectors", 500).unwrap();
        assert_eq!(t.change(), 3.0);
        assert_eq!(t.first.1, 5.0);
    }

    #[test]
    fn snapshot_round_trips_through_serde() {
        let mut h = History::new(small());
        h.record("b", T0, 1.5);
        h.record("a", T0, 2.5);
        let snap = h.snapshot(0);
        assert_eq!(snap.series[0].name, "a");
        let json = serde_json::to_string(&snap).unwrap();
        let back: HistorySnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
    }
}
