//! # tscns-sim: a simulated Italian TS-CNS card for tests
//!
//! Nobody needs a card or a reader to test tscns: this crate simulates the card application of
//! a TS-CNS (Tessera Sanitaria – Carta Nazionale dei Servizi) faithfully enough that OpenSC's
//! `itacns` driver accepts it, and serves it two ways:
//!
//! - in-process, as a [`tscns_apdu::Transport`] ([`SimCard`]) for fast tests;
//! - through pcscd's vpcd reader driver ([`serve_vpcd`], or the `tscns-sim vpcd` command), so
//!   that PC/SC, OpenSC and PKCS#11 see a card in reader `Virtual PCD 00 00`.
//!
//! The card is built from one generation of [`tscns_generations::GENERATIONS`], the table the
//! driver `tscns-card` recognises cards from (the profile's `maker` names it). It has the real ATR
//! of its maker, the CNS file system (EF_ID_Carta, EF_C_Carta,
//! EF_Dati_personali, the IDEMIA 2021 paths), PIN and PUK with retry counters and blocking, the
//! STIncard `0x80` PIN-reference quirk, MSE RESTORE / SET and PSO doing raw RSA (1024 or 2048
//! bits) only after the PIN was verified, GET CHALLENGE and ISO answers to everything else.
//! Its identity comes from a [`SimProfile`], deterministic for a seed; a test PKI ([`TestPki`])
//! issues its CNS-profile authentication certificate from a test CA. Faults ([`Faults`]) add
//! latency, removal, resets by other applications, corrupted or truncated answers and a card
//! that stops answering; [`SimHandle`] counts APDUs, bytes and signatures.
//!
//! ```
//! use tscns_apdu::{Card, Command, StatusWord, Transport};
//! use tscns_sim::{SimProfile, SimCard};
//!
//! let card = SimCard::new(&SimProfile::builtin("stincard-1024")?)?;
//! let handle = card.handle();
//! let mut card = Card::new(card);
//! // SELECT EF_ID_Carta by path and read it.
//! let select = Command::new(0x00, 0xA4, 0x08, 0x00).with_data([0x10, 0x00, 0x10, 0x03]).with_le(256);
//! assert_eq!(card.transmit(&select)?.status(), StatusWord::SUCCESS);
//! let read = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(16);
//! assert_eq!(card.transmit(&read)?.data(), b"6120000000000002");
//! // A wrong PIN (STIncard wants reference 0x10 | 0x80): 2 tries left.
//! let verify = Command::new(0x00, 0x20, 0x00, 0x90).with_data(*b"00000\xFF\xFF\xFF");
//! assert_eq!(card.transmit(&verify)?.status(), StatusWord::new(0x63, 0xC2));
//! assert_eq!(handle.pin_tries_left(), 2);
//! assert_eq!(handle.counters().apdus, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The profile (TOML)
//!
//! Every key is optional; missing keys take the values shown (the built-in default profile is
//! `profiles/default.toml`). Unknown keys and invalid values are errors that name the key.
//!
//! ```toml
//! seed = 7                    # every generated value (keys, serials, challenges) follows it
//! maker = "stincard"          # a generation of tscns_generations::GENERATIONS (`tscns-sim --help` lists them)
//! key_bits = 2048             # 1024 | 2048 (default: 1024 for stincard/athena, else 2048)
//! card_id = "6120000000000002"  # EF_ID_Carta: 16 digits, Luhn check digit last
//! pin = "12345678"            # 5-8 digits
//! puk = "87654321"            # 5-8 digits
//! pin_tries = 3               # 1-15
//! puk_tries = 10              # 1-15
//! extended_length = true      # default: true except stincard/athena with a 1024-bit key
//! command_chaining = false    # default: true for idemia2021 only
//!
//! [personal_data]             # EF_Dati_personali; dates YYYY-MM-DD; a missing field is empty
//! issuer_code = "6120"        # (codice_fiscale is required when the table is present;
//! issue_date = "2021-03-01"   #  without the table the holder is MARIO ROSSI)
//! expiry_date = "2027-03-01"
//! surname = "ROSSI"
//! given_name = "MARIO"
//! birth_date = "1980-01-01"
//! sex = "M"                   # M | F
//! height = ""                 # centimetres
//! codice_fiscale = "RSSMRA80A01H501U"
//! citizenship = ""
//! birth_municipality = "H501" # Belfiore code
//! birth_country = ""
//! birth_act = ""
//! residence_municipality = "H769"
//! residence_address = "VIA ROMA 1"
//! expatriation_notes = ""
//!
//! [certificate]
//! issuing_administration = "REGIONE MARCHE"   # OU of the subject
//! organization = "tscns Test PKI S.p.A."      # O of the subject and the test CA
//! not_before = "2021-03-01T00:00:00Z"         # default: issue_date at midnight UTC
//! not_after = "2027-03-01T00:00:00Z"          # default: expiry_date at midnight UTC
//! policies = ["1.3.76.16.2.1"]                # certificatePolicies OIDs
//!
//! [faults]                    # all off by default; "after N" counts answered APDUs
//! latency_ms = 0              # fixed delay per APDU
//! bit_rate = 9600             # plus 8 bits per byte exchanged at this rate (absent = none)
//! remove_after = 100          # the card leaves the reader (stays out)
//! reset_after = 50            # another application resets the card (once)
//! corrupt_after = 10          # one answer comes back with its first byte inverted
//! truncate_after = 10         # one answer comes back without its last byte
//! mute_after = 20             # the card stops answering (bounded: see mute_timeout_ms)
//! mute_timeout_ms = 200       # how long a mute card keeps the host waiting
//!
//! [guesses]                   # where the public record is silent (see `Guesses`)
//! signing = "cns"             # cns | mse-84 | decipher: the one signing sequence the card takes
//!                             # (default cns; mse-84 for actalis-ace2025)
//! dataless_verify = "state"   # state (63Cx, nothing consumed) | consumes (counts as a wrong
//!                             # PIN) | refused (6700)
//! ```
//!
//! The certificate subject is `C=IT, O=<organization>, OU=<issuing_administration>,
//! CN=<codice fiscale>/<card id>.<base64 SHA-1 of EF_Dati_personali>, givenName, SN`, with
//! certificatePolicies, extendedKeyUsage clientAuth and keyUsage digitalSignature (critical).
//!
//! ## The card's answers, in short
//!
//! | command | answer |
//! |---|---|
//! | SELECT `00 A4` P1 = 00 (FID, none = MF), 01/02 (child DF/EF), 03 (parent), 04 (name: the generation's AID selects its application, anything else 6A82), 08/09 (path from MF without 3F00 / from current DF); P2 = 00 (FCI `6F`), 04 (FCP `62`), 0C (none) | FCI with size (80), descriptor (82), FID (83); 6A82, 6A86, 6700 |
//! | READ BINARY `00 B0` | data 9000; 6282 when the file ends before Le; 6B00 at/after the end; 6Cxx for Le > 0xFF without extended length; 6986 no EF selected; 6982 key file |
//! | VERIFY `00 20 00 <ref>` 8 bytes (PIN in ASCII, 0xFF padded); no data = tries left | 9000, 63Cx, 6983 blocked, 6A88 wrong reference, 6700 |
//! | CHANGE REFERENCE DATA `00 24 00/01 <ref>` | 9000, 63Cx, 6983, 6A80 bad new PIN, 6982 |
//! | RESET RETRY COUNTER `00 2C 00..03 <PIN ref>` (PUK + new PIN / PUK / new PIN / none) | 9000, 63Cx (PUK tries), 6983, 6982 |
//! | MSE `00 22 F3 03` + `00` (RESTORE), `00 22 F1 B6/B8 03 83 01 <key>` (SET); with `[guesses] signing = "mse-84"` only `00 22 41 B6 03 84 01 <key>`, with `"decipher"` only `00 22 F1/41 B8 03 83/84 01 <key>` | 9000, 6A88 unknown SE/key, 6A80, 6700 |
//! | PSO `00 2A 9E 9A` (CDS), `00 2A 80 86` + `00` (DECIPHER): raw RSA of a modulus-sized block | signature 9000; 6982 PIN not verified; 6985 no MSE SET; 6700; 6A80 block ≥ modulus |
//! | GET DATA `00 CA 01 80` (st2022-nfc, its application selected) | `JSign4` 9000 |
//! | GET CHALLENGE `00 84 00 00 Le` | Le random bytes (at most 32 on idemia2021) |
//! | other INS / CLA / chaining where unsupported (6E00 on st2021) / extended length where unsupported | 6D00 / 6E00 / 6884 / 6700 |
//!
//! A generation with an AID (`actalis-ace2025`, `st2022-nfc`) shows its files only while its
//! application is selected (after power-up or reset every SELECT of a file answers 6A82);
//! `actalis-ace2025` answers the AID with the FCI of the public trace, refuses step-by-step
//! selects (P1 00/01/02) with 6A82, has no EF_ID_Carta, a certificate file exactly as long as
//! the DER and the 10-byte EF D003.
//!
//! PIN reference 0x10, PUK 0x11; STIncard cards accept them only with bit 0x80 set
//! (0x90/0x91) and the other makers only without it (OpenSC `card-itacns.c`). Key reference
//! 0x01 (0x02 on idemia2021). Power off, power on, reset and reconnection drop the verified PIN
//! and the security environment; retry counters persist.
//!
//! ## Features
#![doc = document_features::document_features!()]
#![forbid(unsafe_code)]

mod commands;
mod error;
mod faults;
mod fs;
pub mod personal;
mod pki;
mod profile;
mod sim_card;
mod vpcd;

pub use error::Error;
pub use faults::Faults;
pub use pki::{cn_hash, ServerCertificate, TestPki};
pub use profile::{
    CertificateSettings, DatalessVerify, Guesses, KeyBits, Maker, PersonalData, Profile, Secret,
    SimProfile, BUILTIN_PROFILES, CNS_AUTHENTICATION_POLICY,
};
pub use sim_card::{ApduRecord, Counters, SimCard, SimHandle};
pub use vpcd::{run_vpcd, serve_vpcd, vpcd_reader_name, VpcdServer, DEFAULT_VPCD_PORT};
