//! Ctrl-C (SIGINT) and, on Unix, SIGTERM (what `kill` and service managers
//! send) and SIGHUP (a closed terminal), for commands that must clean up
//! before they exit. SIGHUP is left alone when the process started with it
//! ignored (`nohup`), as the user asked. Listening starts
//! when [`StopSignals::listen`] is called, before the command does anything a
//! signal could interrupt: a signal sent the moment the command prints is
//! then handled, not fatal.

use std::io;

/// Which signal asked the command to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP: the terminal went away.
    Hangup,
}

impl Stop {
    /// The shell's convention: 128 + the signal's number.
    pub fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
            Stop::Hangup => 129,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "Ctrl-C (SIGINT)",
            Stop::Terminate => "SIGTERM",
            Stop::Hangup => "SIGHUP (the terminal closed)",
        }
    }
}

/// The handlers, installed; the process no longer dies of either signal.
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    /// `None` when SIGHUP was ignored at start (`nohup`).
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Installs the handlers now (it needs the tokio runtime).
    pub fn listen() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let hangup = if hangup_ignored() {
                None
            } else {
                Some(signal(SignalKind::hangup())?)
            };
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
                hangup,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignals {})
        }
    }

    /// The next stop signal. Cancel-safe: a signal that arrives while this
    /// is not awaited is kept for the next call.
    pub async fn recv(&mut self) -> Stop {
        #[cfg(unix)]
        {
            let hangup = async {
                match &mut self.hangup {
                    Some(hangup) => hangup.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.interrupt.recv() => Stop::Interrupt,
                _ = self.terminate.recv() => Stop::Terminate,
                _ = hangup => Stop::Hangup,
            }
        }
        #[cfg(not(unix))]
        {
            // Without a handler there is nothing to wait for but Ctrl-C; an
            // error installing it means no signal will come.
            match tokio::signal::ctrl_c().await {
                Ok(()) => Stop::Interrupt,
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// Whether SIGHUP is ignored, as `nohup` leaves it for the program it runs.
/// Asked before a handler is installed, which would replace that.
#[cfg(unix)]
fn hangup_ignored() -> bool {
    // SAFETY: `sigaction` with a null new action only reads the current
    // disposition into `current`, a zeroed `sigaction` we own.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}
