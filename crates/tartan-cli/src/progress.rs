use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// indicatif bars for the library's progress reports (hidden when stderr is not a terminal).
#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn finish(&self) {
        if let Some(bar) = self.current.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

impl tartan::Progress for Bars {
    fn stage(&self, name: &'static str, total: u64) {
        let mut cur = self.current.lock().expect("progress lock");
        if let Some(bar) = cur.take() {
            bar.finish_and_clear();
        }
        let bar = if total == 0 {
            let b = ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{msg:>14} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b
        };
        bar.set_message(name);
        *cur = Some(bar);
    }
    fn advance(&self, n: u64) {
        if let Some(bar) = &*self.current.lock().expect("progress lock") {
            bar.inc(n);
        }
    }
}
