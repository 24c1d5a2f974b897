//! CRC-64 as Redis computes it for RDB files and DUMP payloads: the "Jones" polynomial
//! (0xad93d23594c935a9), reflected input and output, initial value 0, no final xor. The check
//! value of `"123456789"` is `0xe9c6d914c4b8d9ca`.
//!
//! One 256-entry table, one byte per step: a snapshot of a few hundred megabytes costs a few
//! hundred milliseconds of checksumming, which is what `rdbchecksum no` exists to avoid.

/// The polynomial bit-reversed, for the reflected (LSB-first) form of the algorithm.
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

const TABLE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// Continues a CRC over `data` (start with 0).
pub fn update(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = TABLE[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(update(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(update(update(0, b"1234"), b"56789"), 0xe9c6_d914_c4b8_d9ca, "incremental");
        assert_eq!(update(0, b""), 0);
    }
}
