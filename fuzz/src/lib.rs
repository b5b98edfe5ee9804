//! What the fuzz targets share: writing seed inputs made by the product's
//! own encoders, so each corpus starts from real frames, tokens, lines,
//! descriptors and plugins rather than from nothing.
//!
//! `scripts/fuzz.sh` runs every target once with `LATTICE_FUZZ_SEEDS` set to
//! its corpus directory before fuzzing; a target's `init` block then calls
//! [`seed`] with its real inputs. Files are named by the blake3 of their
//! bytes, so writing them again changes nothing.

use std::path::PathBuf;

/// Writes `inputs` into the corpus directory named by `LATTICE_FUZZ_SEEDS`,
/// if it is set; does nothing otherwise (a normal fuzzing run).
pub fn seed<I, B>(inputs: impl FnOnce() -> I)
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let Some(dir) = std::env::var_os("LATTICE_FUZZ_SEEDS").map(PathBuf::from) else {
        return;
    };
    std::fs::create_dir_all(&dir).expect("the seed directory can be created");
    let mut n = 0;
    for input in inputs() {
        let bytes = input.as_ref();
        let name = blake3::hash(bytes).to_hex();
        std::fs::write(dir.join(&name[..40]), bytes).expect("a seed can be written");
        n += 1;
    }
    eprintln!("wrote {n} seeds to {}", dir.display());
}

/// Reads an input a piece at a time; zeros and empty slices once it runs
/// out, so every input is a complete (if short) script.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    /// A slice whose length is the next byte (or what is left).
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = (self.byte() as usize).min(self.0.len());
        let (c, rest) = self.0.split_at(n);
        self.0 = rest;
        c
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
