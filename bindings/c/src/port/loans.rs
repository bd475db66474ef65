//! Loans from C: a large request or reply written in place in shared memory, with no
//! copy on either side. A client borrows room in its view heap (`culvert_port_loan`),
//! fills it (`culvert_loan_data`), and calls with it (`culvert_port_call_loaned`); a
//! server borrows room in its heap for a reply (`culvert_incoming_loan_reply`), fills
//! it, and replies with it (`culvert_port_reply_loaned`). Sending a loan consumes its
//! handle; a loan freed unsent (`culvert_loan_free`) gives its room back.

use culvert::port::Loan;

use super::*;
use crate::status::{
    deadline, guard, handle, into_handle, lock, need_out, put, take_handle, CulvertStatus, Failure,
};

/// Room in a view heap lent for a message written in place: a request
/// (`culvert_port_loan`, sent with `culvert_port_call_loaned`) or a reply
/// (`culvert_incoming_loan_reply`, sent with `culvert_port_reply_loaned`). Its bytes
/// with `culvert_loan_data`; free it unsent with `culvert_loan_free`.
///
/// Threads: use from one thread at a time (it may move between threads).
pub struct CulvertLoan {
    loan: Loan,
    /// The lent bytes (in the lender's mapping, which `loan` keeps alive).
    data: *mut u8,
}

impl CulvertLoan {
    /// A handle for `loan`, its bytes' address taken once.
    fn handle(mut loan: Loan) -> *mut CulvertLoan {
        let data = loan.as_mut_slice().as_mut_ptr();
        into_handle(CulvertLoan { loan, data })
    }
}

/// Lends `len` bytes of the client's view heap for a request written in place, waiting
/// up to `timeout_ms` (negative: for ever) for room, and stores the loan in `*loan`
/// (its bytes with `culvert_loan_data`).
///
/// Errors: `CULVERT_E_MESSAGE_TOO_LARGE` (above the port's `max_message` or the
/// heap's size), `CULVERT_E_TIMEOUT`, `CULVERT_E_CLOSED`, `CULVERT_E_PEER_DIED`.
///
/// # Safety
/// `client` is NULL or an open client handle; `loan` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_loan(
    client: *const CulvertPortClient,
    len: usize,
    timeout_ms: i64,
    loan: *mut *mut CulvertLoan,
) -> CulvertStatus {
    guard("culvert_port_loan", || {
        need_out(loan, "loan")?;
        // SAFETY: the caller passes NULL or an open handle.
        let c = unsafe { handle(client, "client") }?;
        let lent = c.client.loan(len, deadline(timeout_ms))?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(loan, CulvertLoan::handle(lent)) };
        Ok(())
    })
}

/// Stores the loan's bytes — writable, their contents unspecified — in `*data` and
/// their number in `*len` (a request or a reply loan). Valid until the loan is sent or
/// freed.
///
/// # Safety
/// `loan` is NULL or a live loan handle; `data` and `len` are NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn culvert_loan_data(
    loan: *const CulvertLoan,
    data: *mut *mut u8,
    len: *mut usize,
) -> CulvertStatus {
    guard("culvert_loan_data", || {
        need_out(data, "data")?;
        need_out(len, "len")?;
        // SAFETY: the caller passes NULL or a live handle.
        let l = unsafe { handle(loan, "loan") }?;
        // SAFETY: both checked non-null; the caller guarantees they are writable.
        unsafe {
            put(data, l.data);
            put(len, l.loan.len());
        }
        Ok(())
    })
}

/// Calls the server with the request written into `loan` (consumed in every case,
/// also on an error) and waits up to `timeout_ms` (negative: for ever) for the reply,
/// stored in `*reply`. The server reads the request where it lies.
///
/// Errors: as `culvert_port_call`; `CULVERT_E_INVALID_ARGUMENT` for a loan this
/// client did not lend.
///
/// # Safety
/// `client` is NULL or an open client handle; `loan` is NULL or a live loan handle,
/// not used again afterwards; `reply` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_call_loaned(
    client: *const CulvertPortClient,
    loan: *mut CulvertLoan,
    timeout_ms: i64,
    reply: *mut *mut CulvertReply,
) -> CulvertStatus {
    guard("culvert_port_call_loaned", || {
        // SAFETY: the caller hands the handle over exactly once.
        let lent = unsafe { take_handle(loan) };
        need_out(reply, "reply")?;
        // SAFETY: the caller passes NULL or an open handle.
        let c = unsafe { handle(client, "client") }?;
        let lent = lent.ok_or_else(|| Failure::invalid("loan is NULL"))?;
        let r = c.client.call_loaned(lent.loan, deadline(timeout_ms))?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(reply, into_handle(CulvertReply { reply: r })) };
        Ok(())
    })
}

/// Frees a loan (request or reply) unsent, giving its room back. NULL is a no-op.
///
/// # Safety
/// `loan` is NULL or a live loan handle, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn culvert_loan_free(loan: *mut CulvertLoan) -> CulvertStatus {
    guard("culvert_loan_free", || {
        // SAFETY: the caller hands the handle back exactly once.
        drop(unsafe { take_handle(loan) });
        Ok(())
    })
}

/// Lends `len` bytes of the server's view heap for the reply to request `incoming`,
/// written in place, waiting up to `timeout_ms` (negative: for ever) for room, and
/// stores the loan in `*loan` (its bytes with `culvert_loan_data`).
///
/// Errors: `CULVERT_E_INVALID_ARGUMENT` (a datagram, or replied already),
/// `CULVERT_E_MESSAGE_TOO_LARGE`, `CULVERT_E_TIMEOUT`, `CULVERT_E_CLOSED` /
/// `CULVERT_E_PEER_DIED` (the client is gone).
///
/// # Safety
/// `incoming` is NULL or a live incoming handle; `loan` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn culvert_incoming_loan_reply(
    incoming: *const CulvertIncoming,
    len: usize,
    timeout_ms: i64,
    loan: *mut *mut CulvertLoan,
) -> CulvertStatus {
    guard("culvert_incoming_loan_reply", || {
        need_out(loan, "loan")?;
        // SAFETY: the caller passes NULL or a live handle.
        let m = unsafe { handle(incoming, "incoming") }?;
        let lent = lock(&m.incoming)?
            .as_ref()
            .ok_or_else(|| Failure::invalid("the request was already replied to"))?
            .loan_reply(len, deadline(timeout_ms))?;
        // SAFETY: checked non-null; the caller guarantees it is writable.
        unsafe { put(loan, CulvertLoan::handle(lent)) };
        Ok(())
    })
}

/// Replies to request `incoming` with the bytes written into `loan` (consumed in every
/// case, also on an error): the client reads them where they lie.
///
/// Errors: as `culvert_port_reply`; `CULVERT_E_INVALID_ARGUMENT` for a loan this
/// port did not lend.
///
/// # Safety
/// `incoming` is NULL or a live incoming handle; `loan` is NULL or a live loan handle,
/// not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn culvert_port_reply_loaned(
    incoming: *const CulvertIncoming,
    loan: *mut CulvertLoan,
) -> CulvertStatus {
    guard("culvert_port_reply_loaned", || {
        // SAFETY: the caller hands the handle over exactly once.
        let lent = unsafe { take_handle(loan) };
        // SAFETY: the caller passes NULL or a live handle.
        let m = unsafe { handle(incoming, "incoming") }?;
        let lent = lent.ok_or_else(|| Failure::invalid("loan is NULL"))?;
        m.take_request()?.reply_loaned(lent.loan)?;
        Ok(())
    })
}
