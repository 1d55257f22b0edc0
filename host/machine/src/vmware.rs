//! VMware's guest RPC ("RPCI") over the backdoor I/O port, in place of `vmware-rpctool`: how a
//! guest reads its `guestinfo.*` variables (`info-get guestinfo.hostname`) without VMware Tools.
//!
//! The backdoor is an `in` from port 0x5658 with the magic `VMXh` in EAX and a command in CX;
//! the hypervisor answers in the registers. RPCI rides on its message commands (30): open a
//! channel with the `RPCI` protocol (getting a channel id and two cookies), send the request's
//! size then its bytes four at a time (the low-bandwidth form every VMware product speaks),
//! receive the reply's size and bytes the same way, acknowledge, close. A reply starts with
//! `1 ` (success) or `0 ` (failure, e.g. `0 No value found`).
//!
//! [`rpc`] is the protocol over any [`Backdoor`]; [`IoPort`] is the real port (x86-64 only).
//! The tests run the protocol against a model of the VMX side; a real VMware hypervisor could
//! not be tested here.

/// The registers of one backdoor call, in and out (32 bits each; RBP and the high-bandwidth
/// port are not used).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
    pub esi: u32,
    pub edi: u32,
}

/// One backdoor call: the hypervisor's answer to `regs`.
pub trait Backdoor {
    fn call(&mut self, regs: Regs) -> Regs;
}

/// `VMXh`.
pub const MAGIC: u32 = 0x564d_5868;
/// The low-bandwidth backdoor port, `VX`.
pub const PORT: u16 = 0x5658;
/// Backdoor commands (CX low word).
pub const CMD_GET_VERSION: u16 = 10;
pub const CMD_MESSAGE: u16 = 30;
/// `RPCI`: the guest-to-host RPC protocol of a message channel.
pub const PROTO_RPCI: u32 = 0x4943_5052;
/// Ask for cookies when opening a channel.
const FLAG_COOKIE: u32 = 0x8000_0000;

/// Message types (CX high word).
pub mod msg {
    pub const OPEN: u16 = 0;
    pub const SEND_SIZE: u16 = 1;
    pub const SEND_PAYLOAD: u16 = 2;
    pub const RECV_SIZE: u16 = 3;
    pub const RECV_PAYLOAD: u16 = 4;
    pub const RECV_STATUS: u16 = 5;
    pub const CLOSE: u16 = 6;
}

/// Status bits (CX high word of an answer).
pub mod status {
    pub const SUCCESS: u16 = 0x0001;
    pub const DO_RECV: u16 = 0x0002;
    pub const CHECKPOINT: u16 = 0x0010;
}

/// Longest reply accepted (a user-data in guestinfo is at most a few hundred KiB).
pub const MAX_REPLY: u32 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// The hypervisor refused a step (`what`): not VMware, or the channel broke.
    Refused(&'static str),
    /// A reply longer than [`MAX_REPLY`].
    TooLong(u32),
    /// The request does not fit the protocol's 32-bit size.
    RequestTooLong(usize),
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Refused(what) => write!(f, "the VMware backdoor refused {what}"),
            RpcError::TooLong(n) => write!(f, "the VMware RPC reply is {n} bytes, too long"),
            RpcError::RequestTooLong(n) => {
                write!(f, "the VMware RPC request is {n} bytes, too long")
            }
        }
    }
}

impl std::error::Error for RpcError {}

/// A message channel: its id and cookies.
struct Channel {
    id: u16,
    cookie: (u32, u32),
}

fn message(kind: u16, ebx: u32, ch: Option<&Channel>) -> Regs {
    let (id, (esi, edi)) = ch.map_or((0, (0, 0)), |c| (c.id, c.cookie));
    Regs {
        eax: MAGIC,
        ebx,
        ecx: u32::from(CMD_MESSAGE) | u32::from(kind) << 16,
        edx: u32::from(PORT) | u32::from(id) << 16,
        esi,
        edi,
    }
}

fn status_of(r: &Regs) -> u16 {
    (r.ecx >> 16) as u16
}

fn ok(r: &Regs) -> bool {
    status_of(r) & status::SUCCESS != 0
}

/// Whether the backdoor answers as VMware does (`GETVERSION` returns the magic in EBX).
pub fn present(door: &mut dyn Backdoor) -> bool {
    let out = door.call(Regs {
        eax: MAGIC,
        ebx: !MAGIC,
        ecx: u32::from(CMD_GET_VERSION),
        edx: u32::from(PORT),
        ..Regs::default()
    });
    out.ebx == MAGIC && out.eax != u32::MAX
}

/// Send `request` over a new RPCI channel and return the reply (with its `1 `/`0 ` status).
pub fn rpc(door: &mut dyn Backdoor, request: &[u8]) -> Result<Vec<u8>, RpcError> {
    let size = u32::try_from(request.len()).map_err(|_| RpcError::RequestTooLong(request.len()))?;
    let open = door.call(message(msg::OPEN, PROTO_RPCI | FLAG_COOKIE, None));
    let open = if ok(&open) {
        open
    } else {
        // Old hypervisors know no cookies.
        let again = door.call(message(msg::OPEN, PROTO_RPCI, None));
        if !ok(&again) {
            return Err(RpcError::Refused("opening an RPC channel"));
        }
        again
    };
    let ch = Channel {
        id: (open.edx >> 16) as u16,
        cookie: (open.esi, open.edi),
    };
    let result = exchange(door, &ch, request, size);
    let closed = door.call(message(msg::CLOSE, 0, Some(&ch)));
    let reply = result?;
    if !ok(&closed) {
        return Err(RpcError::Refused("closing the RPC channel"));
    }
    Ok(reply)
}

fn exchange(
    door: &mut dyn Backdoor,
    ch: &Channel,
    request: &[u8],
    size: u32,
) -> Result<Vec<u8>, RpcError> {
    if !ok(&door.call(message(msg::SEND_SIZE, size, Some(ch)))) {
        return Err(RpcError::Refused("the request's size"));
    }
    for chunk in request.chunks(4) {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        let out = door.call(message(
            msg::SEND_PAYLOAD,
            u32::from_le_bytes(word),
            Some(ch),
        ));
        if !ok(&out) {
            return Err(RpcError::Refused("the request"));
        }
    }
    // A checkpoint (the VM was suspended or snapshotted) restarts the reception.
    'receive: loop {
        let head = door.call(message(msg::RECV_SIZE, 0, Some(ch)));
        if !ok(&head) {
            return Err(RpcError::Refused("the reply's size"));
        }
        if status_of(&head) & status::DO_RECV == 0 {
            return Ok(Vec::new());
        }
        if (head.edx >> 16) as u16 != msg::SEND_SIZE {
            return Err(RpcError::Refused("the reply (protocol error)"));
        }
        let size = head.ebx;
        if size > MAX_REPLY {
            return Err(RpcError::TooLong(size));
        }
        let mut reply = Vec::with_capacity(size as usize);
        while reply.len() < size as usize {
            let out = door.call(message(
                msg::RECV_PAYLOAD,
                u32::from(status::SUCCESS),
                Some(ch),
            ));
            if !ok(&out) {
                if status_of(&out) & status::CHECKPOINT != 0 {
                    continue 'receive;
                }
                let _ = door.call(message(msg::RECV_STATUS, 0, Some(ch)));
                return Err(RpcError::Refused("the reply"));
            }
            if (out.edx >> 16) as u16 != msg::SEND_PAYLOAD {
                let _ = door.call(message(msg::RECV_STATUS, 0, Some(ch)));
                return Err(RpcError::Refused("the reply (protocol error)"));
            }
            let take = (size as usize - reply.len()).min(4);
            reply.extend_from_slice(&out.ebx.to_le_bytes()[..take]);
        }
        let _ = door.call(message(
            msg::RECV_STATUS,
            u32::from(status::SUCCESS),
            Some(ch),
        ));
        return Ok(reply);
    }
}

/// The value of a guestinfo variable: `info-get KEY` answered `1 VALUE`; `None` for `0 ...`
/// (unset). Pure over the reply.
pub fn info_get_value(reply: &[u8]) -> Option<String> {
    let value = reply
        .strip_prefix(b"1 ")
        .or_else(|| (reply == b"1").then_some(&b""[..]))?;
    Some(String::from_utf8_lossy(value).into_owned())
}

/// The real backdoor: `in eax, dx` on port [`PORT`]. Opening it asks the kernel for access to
/// the port (root), so that on a machine that is not VMware the `in` reads nothing instead of
/// faulting.
#[derive(Debug)]
pub struct IoPort(());

impl IoPort {
    pub fn open() -> std::io::Result<IoPort> {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: ioperm(2) changes this process's I/O permission bitmap only. A 32-bit
            // `in` reads four ports: all four must be granted, or it faults.
            if unsafe { libc::ioperm(libc::c_ulong::from(PORT), 4, 1) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(IoPort(()))
        }
        #[cfg(not(target_arch = "x86_64"))]
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

impl Backdoor for IoPort {
    #[cfg(target_arch = "x86_64")]
    fn call(&mut self, r: Regs) -> Regs {
        let (mut eax, mut ecx, mut edx, mut esi, mut edi) = (r.eax, r.ecx, r.edx, r.esi, r.edi);
        let ebx_out: u64;
        // SAFETY: the port was granted by ioperm(2) in `open`; the instruction touches only the
        // registers named here (RBX, reserved by LLVM, is swapped through a scratch register).
        unsafe {
            std::arch::asm!(
                "xchg {b:r}, rbx",
                "in eax, dx",
                "xchg {b:r}, rbx",
                b = inout(reg) u64::from(r.ebx) => ebx_out,
                inout("eax") eax,
                inout("ecx") ecx,
                inout("edx") edx,
                inout("esi") esi,
                inout("edi") edi,
                options(nostack),
            );
        }
        Regs {
            eax,
            ebx: ebx_out as u32,
            ecx,
            edx,
            esi,
            edi,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    fn call(&mut self, r: Regs) -> Regs {
        Regs { eax: u32::MAX, ..r }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The VMX side of RPCI, as the protocol describes it: one channel, cookies checked, the
    /// request assembled from 4-byte words, the reply handed out 4 bytes at a time. Every call
    /// is checked for the magic and the port.
    struct Vmx {
        vars: BTreeMap<String, String>,
        cookies: bool,
        open: bool,
        request: Vec<u8>,
        request_size: usize,
        reply: Vec<u8>,
        sent: usize,
        checkpoint_once: bool,
        calls: usize,
    }

    impl Vmx {
        fn new(vars: &[(&str, &str)]) -> Vmx {
            Vmx {
                vars: vars
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                cookies: true,
                open: false,
                request: Vec::new(),
                request_size: 0,
                reply: Vec::new(),
                sent: 0,
                checkpoint_once: false,
                calls: 0,
            }
        }
        fn answer(&self, status: u16, r: Regs) -> Regs {
            Regs {
                ecx: u32::from(status) << 16,
                ..r
            }
        }
    }

    const CHANNEL: u16 = 7;
    const COOKIE: (u32, u32) = (0x1234_5678, 0x9abc_def0);

    impl Backdoor for Vmx {
        fn call(&mut self, r: Regs) -> Regs {
            self.calls += 1;
            assert_eq!(r.eax, MAGIC);
            assert_eq!(r.edx & 0xffff, u32::from(PORT));
            let cmd = (r.ecx & 0xffff) as u16;
            if cmd == CMD_GET_VERSION {
                return Regs {
                    eax: 6,
                    ebx: MAGIC,
                    ..r
                };
            }
            assert_eq!(cmd, CMD_MESSAGE);
            let kind = (r.ecx >> 16) as u16;
            if kind == msg::OPEN {
                assert_eq!(r.ebx & !FLAG_COOKIE, PROTO_RPCI);
                if r.ebx & FLAG_COOKIE != 0 && !self.cookies {
                    return self.answer(0, r);
                }
                self.open = true;
                return Regs {
                    ecx: u32::from(status::SUCCESS) << 16,
                    edx: u32::from(CHANNEL) << 16,
                    esi: COOKIE.0,
                    edi: COOKIE.1,
                    ..r
                };
            }
            assert!(self.open, "message on a closed channel");
            assert_eq!((r.edx >> 16) as u16, CHANNEL);
            if self.cookies {
                assert_eq!((r.esi, r.edi), COOKIE, "cookies");
            }
            match kind {
                msg::SEND_SIZE => {
                    self.request_size = r.ebx as usize;
                    self.request.clear();
                    self.answer(status::SUCCESS, r)
                }
                msg::SEND_PAYLOAD => {
                    let take = (self.request_size - self.request.len()).min(4);
                    self.request.extend_from_slice(&r.ebx.to_le_bytes()[..take]);
                    if self.request.len() == self.request_size {
                        let text = String::from_utf8(self.request.clone()).unwrap();
                        self.reply = if let Some(k) = text.strip_prefix("info-get ") {
                            match self.vars.get(k) {
                                Some(v) => format!("1 {v}").into_bytes(),
                                None => b"0 No value found".to_vec(),
                            }
                        } else if let Some(kv) = text.strip_prefix("info-set ") {
                            let (k, v) = kv.split_once(' ').unwrap_or((kv, ""));
                            self.vars.insert(k.to_string(), v.to_string());
                            b"1 ".to_vec()
                        } else {
                            b"0 Unknown command".to_vec()
                        };
                        self.sent = 0;
                    }
                    self.answer(status::SUCCESS, r)
                }
                msg::RECV_SIZE => {
                    self.sent = 0;
                    Regs {
                        ebx: self.reply.len() as u32,
                        ecx: u32::from(status::SUCCESS | status::DO_RECV) << 16,
                        edx: u32::from(msg::SEND_SIZE) << 16 | u32::from(PORT),
                        ..r
                    }
                }
                msg::RECV_PAYLOAD => {
                    if self.checkpoint_once && self.sent > 0 {
                        self.checkpoint_once = false;
                        return self.answer(status::CHECKPOINT, r);
                    }
                    let mut word = [0u8; 4];
                    let end = (self.sent + 4).min(self.reply.len());
                    word[..end - self.sent].copy_from_slice(&self.reply[self.sent..end]);
                    self.sent = end;
                    Regs {
                        ebx: u32::from_le_bytes(word),
                        ecx: u32::from(status::SUCCESS) << 16,
                        edx: u32::from(msg::SEND_PAYLOAD) << 16 | u32::from(PORT),
                        ..r
                    }
                }
                msg::RECV_STATUS => self.answer(status::SUCCESS, r),
                msg::CLOSE => {
                    self.open = false;
                    self.answer(status::SUCCESS, r)
                }
                other => panic!("message type {other}"),
            }
        }
    }

    #[test]
    fn info_get_round_trips_every_length() {
        for len in 0..12 {
            let value: String = "abcdefghijklmnop"[..len].to_string();
            let mut vmx = Vmx::new(&[("guestinfo.hostname", &value)]);
            let reply = rpc(&mut vmx, b"info-get guestinfo.hostname").unwrap();
            assert_eq!(info_get_value(&reply), Some(value.clone()), "{len}");
            assert!(!vmx.open, "channel closed");
        }
    }

    #[test]
    fn info_set_then_get() {
        let mut vmx = Vmx::new(&[]);
        let reply = rpc(&mut vmx, b"info-set guestinfo.ip 10.0.2.15").unwrap();
        assert!(reply.starts_with(b"1"));
        assert_eq!(vmx.vars["guestinfo.ip"], "10.0.2.15");
        let reply = rpc(&mut vmx, b"info-get guestinfo.ip").unwrap();
        assert_eq!(info_get_value(&reply).as_deref(), Some("10.0.2.15"));
    }

    #[test]
    fn unset_variables_and_old_hypervisors() {
        let mut vmx = Vmx::new(&[]);
        let reply = rpc(&mut vmx, b"info-get guestinfo.nope").unwrap();
        assert_eq!(reply, b"0 No value found");
        assert_eq!(info_get_value(&reply), None);
        let mut old = Vmx::new(&[("guestinfo.a", "b")]);
        old.cookies = false;
        assert_eq!(
            info_get_value(&rpc(&mut old, b"info-get guestinfo.a").unwrap()),
            Some("b".into())
        );
    }

    #[test]
    fn a_checkpoint_restarts_the_reply() {
        let mut vmx = Vmx::new(&[(
            "guestinfo.coreos.config.data",
            "#cloud-config\nhostname: x\n",
        )]);
        vmx.checkpoint_once = true;
        let reply = rpc(&mut vmx, b"info-get guestinfo.coreos.config.data").unwrap();
        assert_eq!(
            info_get_value(&reply).as_deref(),
            Some("#cloud-config\nhostname: x\n")
        );
    }

    #[test]
    fn presence_and_refusals() {
        assert!(present(&mut Vmx::new(&[])));
        struct Nothing;
        impl Backdoor for Nothing {
            fn call(&mut self, _: Regs) -> Regs {
                Regs {
                    eax: u32::MAX,
                    ebx: u32::MAX,
                    ecx: u32::MAX,
                    ..Regs::default()
                }
            }
        }
        assert!(!present(&mut Nothing));
        struct Refuses;
        impl Backdoor for Refuses {
            fn call(&mut self, r: Regs) -> Regs {
                Regs { ecx: 0, ..r }
            }
        }
        assert_eq!(
            rpc(&mut Refuses, b"info-get x"),
            Err(RpcError::Refused("opening an RPC channel"))
        );
        assert_eq!(info_get_value(b"1"), Some(String::new()));
        assert_eq!(info_get_value(b"garbage"), None);
    }
}
