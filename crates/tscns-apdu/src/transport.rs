//! The `Transport` trait: one link to one card, raw bytes in and out.

use crate::Error;

/// A link to one card: raw bytes in, raw bytes out.
///
/// Implemented by the PC/SC backend (`pcsc::PcscTransport`), by the simulator (crate
/// `tscns-sim`) and by [`crate::ScriptedTransport`]. The response loop lives in [`crate::Card`],
/// not here.
pub trait Transport {
    /// Sends one raw C-APDU and returns the raw R-APDU (data + SW1 SW2). No 61xx/6Cxx handling
    /// here. A card reset by another application gives [`Error::CardReset`]; a card that is gone
    /// gives [`Error::CardRemoved`].
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, Error>;

    /// The card's answer to reset.
    fn atr(&self) -> &[u8];

    /// Begins an exclusive transaction: no other application talks to the card until
    /// [`Transport::end_transaction`]. Default: nothing to do.
    fn begin_transaction(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Ends the transaction begun by [`Transport::begin_transaction`], leaving the card as it is.
    /// Default: nothing to do.
    fn end_transaction(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Re-establishes the link after [`Error::CardReset`]. Default: [`Error::NotSupported`].
    fn reconnect(&mut self) -> Result<(), Error> {
        Err(Error::NotSupported {
            what: "this transport cannot reconnect".to_owned(),
        })
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        (**self).transmit_raw(command)
    }
    fn atr(&self) -> &[u8] {
        (**self).atr()
    }
    fn begin_transaction(&mut self) -> Result<(), Error> {
        (**self).begin_transaction()
    }
    fn end_transaction(&mut self) -> Result<(), Error> {
        (**self).end_transaction()
    }
    fn reconnect(&mut self) -> Result<(), Error> {
        (**self).reconnect()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit_raw(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        (**self).transmit_raw(command)
    }
    fn atr(&self) -> &[u8] {
        (**self).atr()
    }
    fn begin_transaction(&mut self) -> Result<(), Error> {
        (**self).begin_transaction()
    }
    fn end_transaction(&mut self) -> Result<(), Error> {
        (**self).end_transaction()
    }
    fn reconnect(&mut self) -> Result<(), Error> {
        (**self).reconnect()
    }
}
