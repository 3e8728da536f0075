//! What a request carries besides the request, and how the registry records the service's two
//! types.

use crate::message::{ShmMessage, fingerprint};
use crate::pubsub::topic::MessageType;

/// A request as it travels: who asked (the client's registry slot and generation, which name
/// its response topic) and the request's number, then the request itself. Its fingerprint
/// covers `Req`'s, so a request topic refuses a client with another request type.
#[derive(crate::ShmMessage)]
#[shm(crate = "crate")]
#[repr(C)]
pub(crate) struct Envelope<Req> {
    pub client: u32,
    pub generation: u32,
    pub id: u64,
    pub body: Req,
}

/// The registry's record of a service's types: one fingerprint over both, and `Req -> Resp` as
/// the name (so a mismatch names all four types).
pub(crate) fn service_type<Req: ShmMessage, Resp: ShmMessage>(name: &str) -> MessageType<'_> {
    let mut h = fingerprint::str(fingerprint::START, "request/response");
    h = fingerprint::u64(h, Req::FINGERPRINT);
    h = fingerprint::u64(h, Resp::FINGERPRINT);
    MessageType {
        fingerprint: h,
        size: (size_of::<Req>() as u64) << 32 | size_of::<Resp>() as u64,
        align: (align_of::<Req>() as u64) << 32 | align_of::<Resp>() as u64,
        name: name.into(),
        fields: &[],
        inline: false,
    }
}

/// `Req -> Resp`, as recorded.
pub(crate) fn service_type_name<Req: ShmMessage, Resp: ShmMessage>() -> String {
    use crate::pubsub::describe::concrete_name;
    format!("{} -> {}", concrete_name::<Req>(), concrete_name::<Resp>())
}
