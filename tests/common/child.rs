//! A child process for crash tests: the test binary runs one of its own ignored tests as a
//! child, which reports progress in protocol lines (`opening`, `ready`, `done <i>`, `end`)
//! while the parent kills it with SIGKILL at a random moment.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::Rng;

/// Starts every line of the child's protocol (the test harness prints on stdout too).
const MARK: &str = "hnswdb-crash:";
/// The signal `Child::kill` sends on unix.
const SIGKILL: i32 = 9;

/// Prints one protocol line from the child: straight to fd 1, past the harness's capture, in
/// one write (atomic on a pipe), flushed.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{MARK} {line}\n").as_bytes())
        .unwrap();
    out.flush().unwrap();
}

/// A running child; killed if the parent fails before killing it.
pub struct ChildGuard {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the ignored test `test` of this test binary as a child process, with `env` added to
/// its environment, reading its protocol lines (those [`say`] printed).
pub fn spawn(test: &str, env: &[(&str, String)]) -> ChildGuard {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("HNSWDB_SEED");
    for (name, value) in env {
        child.env(name, value);
    }
    let mut child = child
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness may have printed `test <name> ... ` on the same line.
            if let Some(at) = line.find(MARK) {
                if send
                    .send(line[at + MARK.len()..].trim().to_string())
                    .is_err()
                {
                    break;
                }
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    ChildGuard {
        child,
        lines,
        stderr: Some(stderr),
    }
}

/// What one kill left behind, as the child reported it.
pub struct Killed {
    /// Steps `0..done` returned before the kill.
    pub done: usize,
    /// The child ran out of steps and ended by itself.
    pub ended: bool,
    /// The child had opened the index (the kill did not land during open and recovery).
    pub ready: bool,
}

/// Kills the child `guard` after a random delay: either while it opens (and recovers) its
/// files, within the longest open time seen so far (`open_time`), or after it said `ready`,
/// within `max_delay_ms`.
pub fn run_and_kill(
    mut guard: ChildGuard,
    rng: &mut Rng,
    max_delay_ms: u64,
    open_time: &mut Duration,
) -> Killed {
    let mut lines = Vec::new();
    let next_line =
        |lines: &mut Vec<String>| match guard.lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                lines.push(line);
                true
            }
            Err(RecvTimeoutError::Timeout) => panic!("the child said nothing for 60 s"),
            Err(RecvTimeoutError::Disconnected) => false, // it died: the status check says why
        };
    if next_line(&mut lines) {
        let opening = Instant::now();
        if rng.chance(25) {
            // Spread over scales: most opens take a small part of the longest one.
            let micros = open_time.as_micros() as u64 >> rng.below(6);
            std::thread::sleep(Duration::from_micros(rng.below(micros + 1)));
        } else {
            if next_line(&mut lines) {
                *open_time = (*open_time).max(opening.elapsed());
            }
            std::thread::sleep(Duration::from_millis(rng.below(max_delay_ms)));
        }
    }
    guard.child.kill().unwrap();
    let status = guard.child.wait().unwrap();
    lines.extend(guard.lines.try_iter());
    // The reader ends at EOF, which follows the kill.
    while let Ok(line) = guard.lines.recv_timeout(Duration::from_secs(10)) {
        lines.push(line);
    }
    let ended = lines.iter().any(|l| l == "end");
    let ready = lines.iter().any(|l| l == "ready");
    if status.signal() != Some(SIGKILL) && !ended {
        let stderr = guard.stderr.take().unwrap().join().unwrap_or_default();
        panic!("the child died by itself ({status}):\n{stderr}");
    }
    let mut done = 0;
    for line in &lines {
        if let Some(i) = line.strip_prefix("done ") {
            let i: usize = i.parse().unwrap();
            assert_eq!(i, done, "steps reported out of order");
            done += 1;
        }
    }
    Killed { done, ended, ready }
}
