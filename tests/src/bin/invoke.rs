//! `make invoke FN=<function> EVENT=<file>`: runs one packaged function (`make build`) on one event
//! against the running local stack (`make run`), as `sam local invoke` would without Docker: the
//! function gets the environment the template gives it, resolved to the local stand-ins, and a
//! local Lambda Runtime API that hands it the event. Prints the answer on stdout; the function's
//! logs, its init time and peak memory on stderr. Exits non-zero if the function failed.

use std::process::ExitCode;
use std::time::Duration;

use integration_tests::lambda::{self, Answer, FUNCTIONS};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("make invoke: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, String> {
    let usage = || format!("usage: make invoke FN=<{}> EVENT=<events/….json>", FUNCTIONS.join("|"));
    let mut args = std::env::args().skip(1);
    let (Some(function), Some(event_path)) = (args.next(), args.next()) else { return Err(usage()) };
    if !FUNCTIONS.contains(&function.as_str()) {
        return Err(format!("no function {function:?}; {}", usage()));
    }
    let text = std::fs::read_to_string(&event_path).map_err(|e| format!("{event_path}: {e}"))?;
    let event: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{event_path} is not JSON: {e}"))?;
    // A signed webhook sample arrives as if made yesterday: one made over 7 days ago is ignored.
    let event = integration_tests::Sample { name: event_path.clone(), event }.made_recently().event;
    let template = integration_tests::template();

    let account = lambda::local_stack().await?;
    let env = account.environment(&template, &lambda::logical_name(&template, &function));
    let bootstrap = lambda::unpack(&function);
    let run = lambda::cold_start(&bootstrap, &function, &env, event, Duration::from_secs(30)).await;
    eprint!("{}", run.logs);
    eprintln!("init {:.1} ms, peak memory {} KiB", run.init.as_secs_f64() * 1000.0, run.peak_kib);
    match run.answer {
        Answer::Response(value) => {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            Ok(true)
        }
        Answer::Error(error) => {
            println!("{error}");
            Ok(false)
        }
    }
}
