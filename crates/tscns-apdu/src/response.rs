//! Response APDUs: data followed by SW1 SW2 (ISO 7816-4 §5.1).

use crate::{Error, StatusWord};

/// A response APDU: data followed by the status word SW1 SW2.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Response {
    data: Vec<u8>,
    sw: StatusWord,
}

impl Response {
    /// Builds a response from data and a status word.
    pub fn new(data: impl Into<Vec<u8>>, sw: StatusWord) -> Self {
        Response {
            data: data.into(),
            sw,
        }
    }

    /// Parses raw response bytes; needs at least the two status bytes.
    pub fn from_bytes(raw: &[u8]) -> Result<Response, Error> {
        match raw.split_last_chunk::<2>() {
            Some((data, [sw1, sw2])) => Ok(Response {
                data: data.to_vec(),
                sw: StatusWord::new(*sw1, *sw2),
            }),
            None => Err(Error::bad_response(format!(
                "a response of {} byte(s) lacks the 2 status bytes",
                raw.len()
            ))),
        }
    }

    /// Like [`Response::from_bytes`] but takes the buffer without copying the data.
    pub fn from_vec(mut raw: Vec<u8>) -> Result<Response, Error> {
        if raw.len() < 2 {
            return Err(Error::bad_response(format!(
                "a response of {} byte(s) lacks the 2 status bytes",
                raw.len()
            )));
        }
        let sw2 = raw.pop().unwrap_or_default();
        let sw1 = raw.pop().unwrap_or_default();
        Ok(Response {
            data: raw,
            sw: StatusWord::new(sw1, sw2),
        })
    }

    /// The raw bytes: data then SW1 SW2.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.data.len() + 2);
        v.extend_from_slice(&self.data);
        v.extend_from_slice(&self.sw.to_bytes());
        v
    }

    /// The response data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the response data.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// The status word.
    pub fn status(&self) -> StatusWord {
        self.sw
    }

    /// Whether the status word is 9000.
    pub fn is_success(&self) -> bool {
        self.sw.is_success()
    }

    /// The data if the status word is 9000, otherwise [`Error::Status`].
    pub fn success_data(self) -> Result<Vec<u8>, Error> {
        if self.is_success() {
            Ok(self.data)
        } else {
            Err(Error::Status(self.sw))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_back() {
        let r = Response::from_bytes(&[1, 2, 0x90, 0]).unwrap();
        assert_eq!(r.data(), [1, 2]);
        assert!(r.is_success());
        assert_eq!(r.to_bytes(), [1, 2, 0x90, 0]);
        assert_eq!(Response::from_vec(vec![1, 2, 0x90, 0]).unwrap(), r);
        let e = Response::from_bytes(&[0x6A, 0x82]).unwrap();
        assert_eq!(e.status(), StatusWord::FILE_NOT_FOUND);
        assert!(matches!(
            e.success_data(),
            Err(Error::Status(StatusWord::FILE_NOT_FOUND))
        ));
        assert!(matches!(
            Response::from_bytes(&[0x90]),
            Err(Error::BadResponse { .. })
        ));
        assert!(Response::from_vec(vec![]).is_err());
    }
}
