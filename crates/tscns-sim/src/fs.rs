//! The card's file system: MF, DFs and transparent EFs with the real FIDs (CNS functional specification (CNIPA/AgID); OpenSC's itacns driver,
//! "File system"; OpenSC `pkcs15-itacns.c` for the IDEMIA 2021 paths).

use tscns_generations::{FciStyle, FilePath};

use crate::pki::TestPki;
use crate::profile::SimProfile;

/// FID of the master file.
pub(crate) const MF: u16 = 0x3F00;

/// Allocated size of a certificate EF: real cards reserve 2048 bytes and pad after the DER
/// (OpenSC commit "itacns: Add support for 2021 Idemia CNS cards": "The certificate has a size of
/// 2048").
const CERT_FILE_SIZE: usize = 2048;

/// What a node is.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A dedicated file (directory).
    Df,
    /// A transparent EF anyone may read.
    Ef(Vec<u8>),
    /// An internal EF (key material): selectable, never readable.
    InternalEf,
}

/// One file.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) fid: u16,
    pub(crate) parent: Option<usize>,
    pub(crate) kind: Kind,
}

/// The whole tree; node 0 is the MF.
#[derive(Debug, Clone)]
pub(crate) struct FileSystem {
    nodes: Vec<Node>,
    fci_style: FciStyle,
}

/// `data` followed by zero bytes up to `size` (files are allocated bigger than their content).
fn padded(mut data: Vec<u8>, size: usize) -> Vec<u8> {
    if data.len() < size {
        data.resize(size, 0);
    }
    data
}

/// The card number as packed BCD (EF_GDO's ICC serial number, tag 5A).
fn bcd(digits: &str) -> Vec<u8> {
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = pair[0].wrapping_sub(b'0') & 0x0F;
            let lo = pair.get(1).map_or(0x0F, |d| d.wrapping_sub(b'0') & 0x0F);
            (hi << 4) | lo
        })
        .collect()
}

impl FileSystem {
    /// The file system of the card of `profile` with the certificate of `pki`.
    pub(crate) fn build(profile: &SimProfile, pki: &TestPki) -> FileSystem {
        let layout = profile.maker.generation().layout;
        let mut fs = FileSystem {
            nodes: vec![Node {
                fid: MF,
                parent: None,
                kind: Kind::Df,
            }],
            fci_style: layout.fci,
        };
        let cert_file = if layout.cert_file_padded {
            padded(
                pki.card_cert_der().to_vec(),
                CERT_FILE_SIZE.max(pki.card_cert_der().len().div_ceil(256) * 256),
            )
        } else {
            pki.card_cert_der().to_vec()
        };
        // ACe 2025: the public trace shows only its own files (no DF 1000, no EF_ID_Carta).
        if !layout.card_id_from_certificate {
            fs.put_classic_files(profile);
        }
        // EF_Dati_personali, allocated at the 400 bytes OpenSC reads at most, the certificate
        // and the key file where the generation's layout puts them (the classic
        // 3F00/1100/1102, EF_C_Carta 3F00/1100/1101; the IDEMIA 2021 certificate
        // 3F00/1400/9001/2002 with its key file 3F00/1400/9002; ACe 2025's DA01/C001).
        let dati = crate::personal::encode(&profile.personal_data);
        fs.put(
            layout.dati_personali,
            Kind::Ef(padded(dati, crate::personal::MAX_FILE_LEN)),
        );
        fs.put(layout.key_set.cert_path, Kind::Ef(cert_file));
        if let Some(key_file) = layout.key_file {
            fs.put(key_file, Kind::InternalEf);
        }
        for (path, size) in layout.other_files {
            fs.put(path, Kind::Ef(vec![0; usize::from(*size)]));
        }
        fs
    }

    /// The DFs of every classic CNS with their filler files, and EF_ID_Carta.
    fn put_classic_files(&mut self, profile: &SimProfile) {
        let atr = profile.maker.atr();
        let hist = atr.get(10..16).unwrap_or(&[]);
        // DF 1000: card identification.
        let df1 = self.add(0, 0x1000, Kind::Df);
        // EF_DatiProcessore: chip data (filler: chip and mask bytes of the ATR, card number BCD).
        let mut chip = hist.to_vec();
        chip.extend(bcd(&profile.card_id));
        self.add(df1, 0x1002, Kind::Ef(padded(chip, 32)));
        // DF 1100: holder.
        self.add(0, 0x1100, Kind::Df);
        // DF 1200: services (filler content).
        let df3 = self.add(0, 0x1200, Kind::Df);
        self.add(df3, 0x1201, Kind::Ef(padded(b"000000".to_vec(), 256)));
        self.add(df3, 0x1202, Kind::Ef(vec![0x00, 0x00, 0x10, 0x00]));
        self.add(df3, 0x1203, Kind::Ef(padded(b"000000".to_vec(), 256)));
        // EF_CardStatus and EF_GDO in the MF.
        self.add(0, 0x3F02, Kind::Ef(vec![0x01]));
        let mut gdo = vec![0x5A, 0x08];
        gdo.extend(bcd(&profile.card_id));
        self.add(0, 0x2F02, Kind::Ef(gdo));
        // EF_ID_Carta: 16 ASCII digits.
        self.put(
            profile.maker.generation().layout.id_carta,
            Kind::Ef(profile.card_id.as_bytes().to_vec()),
        );
    }

    /// Adds the file at `path` below the MF, creating the DFs on the way that are missing.
    fn put(&mut self, path: FilePath, kind: Kind) {
        let Some((last, dfs)) = path.split_last() else {
            return;
        };
        let mut at = 0;
        for fid in dfs {
            let fid = u16::from_be_bytes(*fid);
            at = match self.child(at, fid) {
                Some(df) => df,
                None => self.add(at, fid, Kind::Df),
            };
        }
        self.add(at, u16::from_be_bytes(*last), kind);
    }

    fn add(&mut self, parent: usize, fid: u16, kind: Kind) -> usize {
        self.nodes.push(Node {
            fid,
            parent: Some(parent),
            kind,
        });
        self.nodes.len() - 1
    }

    pub(crate) fn node(&self, id: usize) -> &Node {
        &self.nodes[id]
    }

    pub(crate) fn is_df(&self, id: usize) -> bool {
        matches!(self.nodes[id].kind, Kind::Df)
    }

    /// The child of `df` with this FID.
    pub(crate) fn child(&self, df: usize, fid: u16) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.parent == Some(df) && n.fid == fid)
    }

    /// ISO 7816-4 selection by FID: the MF, the current DF itself, a child of the current DF,
    /// its parent, or a child of its parent.
    pub(crate) fn find_fid(&self, current_df: usize, fid: u16) -> Option<usize> {
        if fid == MF {
            return Some(0);
        }
        if self.nodes[current_df].fid == fid {
            return Some(current_df);
        }
        if let Some(c) = self.child(current_df, fid) {
            return Some(c);
        }
        let parent = self.nodes[current_df].parent?;
        if self.nodes[parent].fid == fid {
            return Some(parent);
        }
        self.child(parent, fid)
    }

    /// Follows a path of FIDs (2 bytes each) from `start`; every step but the last must be a DF.
    pub(crate) fn follow(&self, start: usize, path: &[u8]) -> Option<usize> {
        let mut at = start;
        for (i, pair) in path.chunks_exact(2).enumerate() {
            if i > 0 && !self.is_df(at) {
                return None;
            }
            at = self.child(at, u16::from_be_bytes([pair[0], pair[1]]))?;
        }
        Some(at)
    }

    /// The FCP/FCI answer for a node: template tag `0x62` (FCP) or `0x6F` (FCI), with file size
    /// (tag 80, EFs), file descriptor (82) and FID (83) as OpenSC's `iso7816_process_fci` reads them.
    pub(crate) fn fci(&self, id: usize, template: u8) -> Vec<u8> {
        let node = &self.nodes[id];
        let mut body = Vec::new();
        match &node.kind {
            Kind::Df => body.extend_from_slice(&[0x82, 0x01, 0x38]),
            Kind::Ef(data) => {
                let size = u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes();
                body.extend_from_slice(&[0x80, 0x02, size[0], size[1]]);
                // Working EF, transparent (ACe 2025 adds two bytes: `82 03 01 00 00`).
                match self.fci_style {
                    FciStyle::Classic => body.extend_from_slice(&[0x82, 0x01, 0x01]),
                    FciStyle::Descriptor3 => {
                        body.extend_from_slice(&[0x82, 0x03, 0x01, 0x00, 0x00])
                    }
                }
            }
            Kind::InternalEf => {
                // Internal EF (bits 6-4 = 001), transparent.
                body.extend_from_slice(&[0x82, 0x01, 0x09]);
            }
        }
        let fid = node.fid.to_be_bytes();
        body.extend_from_slice(&[0x83, 0x02, fid[0], fid[1]]);
        let mut out = vec![template, body.len() as u8];
        out.extend(body);
        out
    }

    /// The DF a node lives in (itself for a DF).
    pub(crate) fn df_of(&self, id: usize) -> usize {
        if self.is_df(id) {
            id
        } else {
            self.nodes[id].parent.unwrap_or(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_packs_two_digits_per_byte() {
        assert_eq!(bcd("6120000000000002"), [0x61, 0x20, 0, 0, 0, 0, 0, 0x02]);
        assert_eq!(bcd("123"), [0x12, 0x3F]);
    }
}
