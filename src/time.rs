//! Dates as nasgate writes them: S3's ISO 8601 listing times and HTTP dates. Below both the
//! S3 front (responses) and the store (fsck's report), so neither reaches into the other.

use std::time::{SystemTime, UNIX_EPOCH};

/// ISO 8601 with milliseconds, as S3 lists times: `2026-11-22T10:01:02.123Z`.
pub fn iso8601(t: SystemTime) -> String {
    let mut out = String::with_capacity(24);
    push_iso8601(&mut out, t);
    out
}

/// Appends `t` as [`iso8601`] writes it, without a string of its own (a listing writes a
/// thousand of them per page).
pub fn push_iso8601(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Outside four digits the fixed-width fields below would be wrong; rare enough for
        // the formatter.
        push_formatted(out, t);
        return;
    }
    let digits = |out: &mut String, v: u32, width: u32| {
        for i in (0..width).rev() {
            out.push(char::from(b'0' + (v / 10u32.pow(i) % 10) as u8));
        }
    };
    digits(out, y as u32, 4);
    out.push('-');
    digits(out, m, 2);
    out.push('-');
    digits(out, day, 2);
    out.push('T');
    digits(out, (rem / 3600) as u32, 2);
    out.push(':');
    digits(out, ((rem / 60) % 60) as u32, 2);
    out.push(':');
    digits(out, (rem % 60) as u32, 2);
    out.push('.');
    digits(out, d.subsec_millis(), 3);
    out.push('Z');
}

/// [`push_iso8601`] by the standard formatter: its fallback, and its reference in the tests.
fn push_formatted(out: &mut String, t: SystemTime) {
    use std::fmt::Write;
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    );
}

/// RFC 1123 date for HTTP headers (Last-Modified).
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_format_as_s3_does() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(iso8601(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(http_date(t), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn the_digit_writer_agrees_with_the_formatter() {
        let reference = |t: SystemTime| {
            let mut out = String::new();
            push_formatted(&mut out, t);
            out
        };
        // A day less 1 ms per step: 133 years of days, each at a different time of day and
        // millisecond, leap days included; then the edges of four-digit years.
        for ms in (0..4_200_000_000_000u64).step_by(86_399_999) {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(iso8601(t), reference(t), "at {ms} ms");
        }
        for ms in [
            951_782_400_000u64,
            4_107_542_399_999,
            253_402_300_799_999,
            253_402_300_800_000,
        ] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(iso8601(t), reference(t), "at {ms} ms");
        }
    }
}
