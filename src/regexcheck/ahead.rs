//! Matching ahead on a second core. A helper thread reads and dates the lines in batches
//! (the date detector is stateful, so it moves to the helper for the run) and then runs the
//! filter's pure regex searches (`Matcher::prematch`) for the previous batch, from its end;
//! this thread applies the results to the filter in line order from the start, computing any
//! line the helper has not reached. Whoever gets to a line first computes it, so the split
//! of the work adapts to the machine.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::date::DateDetector;
use crate::filter::{DatedLine, Filter, LineResult, Matcher, Prematch, SharedStr};

/// Lines per batch: large enough to amortise the hand-over, small enough to stay in cache.
const BATCH: usize = 1024;

/// Bytes of lines per batch at most: lines near the 1 MiB line limit end a batch early, so
/// the batches in flight hold a few MiB, not a GiB each.
const BATCH_BYTES: usize = 4 << 20;

/// A line read and dated, with its searches: claimed by whichever thread gets there first.
/// The line and its buffer are slices of their batch's text, one allocation for all.
pub struct Pending {
    pub line_no: u64,
    line: SharedStr,
    dated: DatedLine,
    buffer: SharedStr,
    claimed: AtomicBool,
    done: Mutex<Option<Prematch>>,
}

impl Pending {
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Helper side: compute unless the other thread already claimed the line. The lock is
    /// held from the claim to the result, so a waiting reader always finds the result.
    fn fill(&self, matcher: &Matcher, check_all: bool) {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.claimed.swap(true, Ordering::AcqRel) {
            *done = Some(matcher.prematch(self.buffer.clone(), check_all));
        }
    }

    /// Reader side: compute it here if the helper has not claimed it, else copy its result.
    /// A copy, not the helper's own: what the helper allocated goes back to it with the
    /// batch and is freed there, since glibc frees another thread's memory under that
    /// thread's arena lock, which both threads then contend for.
    fn take(&self, matcher: &Matcher, check_all: bool) -> Prematch {
        if !self.claimed.swap(true, Ordering::AcqRel) {
            return matcher.prematch(self.buffer.clone(), check_all);
        }
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        done.clone()
            .unwrap_or_else(|| matcher.prematch(self.buffer.clone(), check_all))
    }
}

/// Scratch bytes kept from one batch to the next, per buffer.
const SCRATCH_KEPT: usize = 8 << 20;

/// Scratch space of the reading side, kept from batch to batch.
#[derive(Default)]
struct Scratch {
    line: String,
    lines: String,
    buffers: String,
    /// Per line: number, date, and where its line and its buffer end.
    read: Vec<(u64, DatedLine, usize, usize)>,
}

/// Read and date up to `BATCH` lines; a read error ends the batch (the lines read before it
/// still count, as they would one at a time).
fn read_batch(
    next: &mut impl FnMut(&mut String) -> io::Result<Option<u64>>,
    mut detector: Option<&mut DateDetector>,
    now: f64,
    scratch: &mut Scratch,
) -> (Vec<Pending>, Option<io::Error>) {
    let Scratch {
        line,
        lines,
        buffers,
        read,
    } = scratch;
    lines.clear();
    buffers.clear();
    read.clear();
    let mut error = None;
    while read.len() < BATCH && lines.len() < BATCH_BYTES {
        let line_no = match next(line) {
            Ok(Some(line_no)) => line_no,
            Ok(None) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        let dated = DatedLine::find(detector.as_deref_mut(), line, now);
        lines.push_str(line);
        Filter::likely_buffer(buffers, line, &dated);
        read.push((line_no, dated, lines.len(), buffers.len()));
    }
    // One allocation for the batch: its lines, then their buffers.
    let base = lines.len();
    lines.push_str(buffers);
    let all: Arc<str> = Arc::from(lines.as_str());
    // Lines near the length limit leave large scratch space behind: not kept for the run.
    for scratch in [line, lines, buffers] {
        if scratch.capacity() > SCRATCH_KEPT {
            *scratch = String::new();
        }
    }
    let (mut line_start, mut buffer_start) = (0, 0);
    let batch = read
        .iter()
        .map(|&(line_no, dated, line_end, buffer_end)| {
            let pending = Pending {
                line_no,
                line: SharedStr::slice(&all, line_start, line_end),
                dated,
                buffer: SharedStr::slice(&all, base + buffer_start, base + buffer_end),
                claimed: AtomicBool::new(false),
                done: Mutex::new(None),
            };
            (line_start, buffer_start) = (line_end, buffer_end);
            pending
        })
        .collect();
    (batch, error)
}

/// Feeds lines through `filter` with dating and searching done ahead on a helper thread;
/// `next` yields the lines to process (already stripped and filtered), `emit` receives each
/// line with its result, in order.
pub fn run(
    filter: &mut Filter,
    now: f64,
    mut next: impl FnMut(&mut String) -> io::Result<Option<u64>> + Send,
    mut emit: impl FnMut(&Pending, LineResult) -> io::Result<()>,
) -> io::Result<()> {
    let matcher = Arc::clone(&filter.matcher);
    let check_all = filter.mode.check_all_regex;
    let mut detector = filter.date_detector.take();
    // Two batches in flight at most: the one being applied and the one being read.
    let (sender, receiver) = mpsc::sync_channel::<io::Result<Arc<Vec<Pending>>>>(1);
    // Applied batches go back to the helper to be freed there: memory freed by the thread
    // that allocated it stays out of the allocator's cross-thread (locked) path.
    let (recycle, recycled) = mpsc::channel::<Arc<Vec<Pending>>>();
    std::thread::scope(|scope| {
        let helper_matcher = Arc::clone(&matcher);
        let helper = scope.spawn(move || {
            let mut previous: Option<Arc<Vec<Pending>>> = None;
            let mut scratch = Scratch::default();
            loop {
                recycled.try_iter().for_each(drop);
                let (lines, error) = read_batch(&mut next, detector.as_mut(), now, &mut scratch);
                let batch = Arc::new(lines);
                let last = batch.is_empty() || error.is_some();
                let mut sent = sender.send(Ok(Arc::clone(&batch))).is_ok();
                if let Some(e) = error {
                    sent = sent && sender.send(Err(e)).is_ok();
                }
                if let Some(previous) = previous.take() {
                    for line in previous.iter().rev() {
                        line.fill(&helper_matcher, check_all);
                    }
                }
                if !sent || last {
                    break;
                }
                previous = Some(batch);
            }
            detector
        });
        let mut outcome = Ok(());
        // Ends when the helper hangs up, after the last (empty or failed) batch.
        for batch in receiver.iter() {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            for line in batch.iter() {
                let prematch = line.take(&matcher, check_all);
                let result = filter.process_dated(&line.line, line.dated, Some(prematch), now);
                if let Err(e) = emit(line, result) {
                    outcome = Err(e);
                    break;
                }
            }
            if outcome.is_err() {
                break;
            }
            let _ = recycle.send(batch);
        }
        // Hang up before waiting, so a helper blocked on sending sees it and stops.
        drop(receiver);
        match helper.join() {
            Ok(detector) => filter.date_detector = detector,
            Err(_) => outcome = outcome.and(Err(io::Error::other("line reader thread panicked"))),
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_the_lines_read_before_an_error() {
        let mut script = vec![Ok(Some("é x")), Ok(Some("")), Ok(Some("a b")), Err(())].into_iter();
        let mut line_no = 0;
        let mut next = |line: &mut String| -> io::Result<Option<u64>> {
            match script.next() {
                Some(Ok(Some(text))) => {
                    line_no += 1;
                    line.clear();
                    line.push_str(text);
                    Ok(Some(line_no))
                }
                Some(Ok(None)) | None => Ok(None),
                Some(Err(())) => Err(io::Error::other("disk gone")),
            }
        };
        let mut scratch = Scratch::default();
        let (batch, error) = read_batch(&mut next, None, 0.0, &mut scratch);
        assert_eq!(error.map(|e| e.to_string()), Some("disk gone".to_string()));
        let lines: Vec<_> = batch.iter().map(|p| (p.line_no, p.line())).collect();
        assert_eq!(lines, vec![(1, "é x"), (2, ""), (3, "a b")]);
        let buffers: Vec<_> = batch.iter().map(|p| &*p.buffer).collect();
        assert_eq!(buffers, vec!["é x\n", "\n", "a b\n"]);
        // The next batch reuses the scratch space: nothing of the first one leaks into it.
        let (batch, error) = read_batch(&mut next, None, 0.0, &mut scratch);
        assert!(batch.is_empty() && error.is_none());
    }

    #[test]
    fn long_lines_end_a_batch_early() {
        let long = "x".repeat(1 << 20);
        let mut left = 6;
        let mut next = |line: &mut String| -> io::Result<Option<u64>> {
            if left == 0 {
                return Ok(None);
            }
            left -= 1;
            line.clear();
            line.push_str(&long);
            Ok(Some(6 - left))
        };
        let mut scratch = Scratch::default();
        let (batch, _) = read_batch(&mut next, None, 0.0, &mut scratch);
        assert_eq!(batch.len(), 4, "4 MiB of lines");
        assert!(batch.iter().all(|p| p.line().len() == 1 << 20));
        let (batch, _) = read_batch(&mut next, None, 0.0, &mut scratch);
        let numbers: Vec<_> = batch.iter().map(|p| p.line_no).collect();
        assert_eq!(numbers, vec![5, 6]);
    }
}
