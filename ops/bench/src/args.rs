//! Command-line parsing of `bench-produce` and `bench-worker` (the harness's contract).

/// A malformed command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgError {
    /// An option the program does not know.
    #[error("unknown argument {0}")]
    Unknown(String),
    /// An option without its value.
    #[error("{0} needs a value")]
    Missing(String),
    /// A value that does not parse.
    #[error("bad value for {0}: {1}")]
    Bad(String, String),
}

/// How `bench-produce` enqueues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One `Producer::push` (or `push_delayed`) awaited per job.
    Single,
    /// `Producer::push_batch` of `batch` jobs per call (one pipeline).
    Batch,
}

/// Arguments of `bench-produce`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceArgs {
    /// Print the queued count instead of producing.
    pub count: bool,
    /// Run id.
    pub run: String,
    /// Jobs to enqueue.
    pub n: u64,
    /// Enqueue mode.
    pub mode: Mode,
    /// Jobs per batch call.
    pub batch: usize,
    /// Pace at this many jobs/s (0 = as fast as possible).
    pub rate: f64,
    /// Make jobs due this many ms after enqueue (0 = immediately).
    pub delay_ms: f64,
}

impl Default for ProduceArgs {
    fn default() -> Self {
        Self {
            count: false,
            run: "run".to_owned(),
            n: 0,
            mode: Mode::Single,
            batch: 1000,
            rate: 0.0,
            delay_ms: 0.0,
        }
    }
}

fn value<'a>(it: &mut impl Iterator<Item = &'a str>, name: &str) -> Result<&'a str, ArgError> {
    it.next().ok_or_else(|| ArgError::Missing(name.to_owned()))
}

fn num<T: std::str::FromStr>(v: &str, name: &str) -> Result<T, ArgError> {
    v.parse()
        .map_err(|_| ArgError::Bad(name.to_owned(), v.to_owned()))
}

fn non_negative(v: f64, name: &str) -> Result<f64, ArgError> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(ArgError::Bad(name.to_owned(), v.to_string()))
    }
}

/// Parses `--run R --n N --mode single|batch [--batch K] [--rate R] [--delay-ms MS]` or `--count`.
pub fn parse_produce<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<ProduceArgs, ArgError> {
    let mut out = ProduceArgs::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a {
            "--count" => out.count = true,
            "--run" => out.run = value(&mut it, a)?.to_owned(),
            "--n" => out.n = num(value(&mut it, a)?, a)?,
            "--batch" => {
                out.batch = num(value(&mut it, a)?, a)?;
                if out.batch == 0 {
                    return Err(ArgError::Bad(a.to_owned(), "0".into()));
                }
            }
            "--rate" => out.rate = non_negative(num(value(&mut it, a)?, a)?, a)?,
            "--delay-ms" => out.delay_ms = non_negative(num(value(&mut it, a)?, a)?, a)?,
            "--mode" => {
                out.mode = match value(&mut it, a)? {
                    "single" => Mode::Single,
                    "batch" => Mode::Batch,
                    other => return Err(ArgError::Bad(a.to_owned(), other.to_owned())),
                }
            }
            other => return Err(ArgError::Unknown(other.to_owned())),
        }
    }
    Ok(out)
}

/// Parses `--concurrency C` (default 10, at least 1).
pub fn parse_concurrency<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<usize, ArgError> {
    let mut c = 10;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a {
            "--concurrency" | "-c" => c = num(value(&mut it, a)?, a)?,
            other => return Err(ArgError::Unknown(other.to_owned())),
        }
    }
    if c == 0 {
        return Err(ArgError::Bad("--concurrency".into(), "0".into()));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_harness_command_lines() {
        let a = parse_produce(
            "--run w3-ab --n 4000 --mode single --rate 200.0 --delay-ms 2000.0".split_whitespace(),
        )
        .unwrap();
        assert_eq!(a.run, "w3-ab");
        assert_eq!(a.n, 4000);
        assert_eq!(a.mode, Mode::Single);
        assert_eq!(a.rate, 200.0);
        assert_eq!(a.delay_ms, 2000.0);
        assert!(!a.count);
        let b =
            parse_produce("--run r --n 5 --mode batch --batch 1000".split_whitespace()).unwrap();
        assert_eq!((b.mode, b.batch), (Mode::Batch, 1000));
        assert!(parse_produce(["--count"]).unwrap().count);
    }

    #[test]
    fn rejects_bad_command_lines() {
        assert!(matches!(
            parse_produce(["--mode", "bulk"]),
            Err(ArgError::Bad(..))
        ));
        assert!(matches!(parse_produce(["--n"]), Err(ArgError::Missing(_))));
        assert!(matches!(parse_produce(["--x"]), Err(ArgError::Unknown(_))));
        assert!(parse_produce(["--batch", "0"]).is_err());
        assert!(parse_produce(["--rate", "-1"]).is_err());
        assert_eq!(parse_concurrency(["--concurrency", "100"]), Ok(100));
        assert_eq!(parse_concurrency([]), Ok(10));
        assert!(parse_concurrency(["--concurrency", "0"]).is_err());
    }
}
