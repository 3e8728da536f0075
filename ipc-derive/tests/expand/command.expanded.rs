#[doc(hidden)]
const _: () = {
    #[automatically_derived]
    unsafe impl ::ipc_runtime::ShmSafe for Command {
        const LAYOUT_FINGERPRINT: ::ipc_runtime::__private::u64 = <Self as ::ipc_runtime::ShmMessage>::FINGERPRINT;
    }
    #[automatically_derived]
    impl ::ipc_runtime::ShmMessage for Command {
        const FINGERPRINT: ::ipc_runtime::__private::u64 = ::ipc_runtime::__private::Fingerprint::new(
                "Command",
            )
            .str("C,u8")
            .layout(
                ::ipc_runtime::__private::size_of::<Self>(),
                ::ipc_runtime::__private::align_of::<Self>(),
            )
            .u64(3u64)
            .str("Stop")
            .i128(0)
            .u64(0u64)
            .str("Go")
            .i128(
                (::ipc_runtime::__private::identity::<::ipc_runtime::__private::u8>(10)
                    as ::ipc_runtime::__private::i128),
            )
            .u64(1u64)
            .variant_field::<f32>("speed")
            .str("Follow")
            .i128(
                (::ipc_runtime::__private::identity::<::ipc_runtime::__private::u8>(10)
                    as ::ipc_runtime::__private::i128)
                    .wrapping_add(1),
            )
            .u64(1u64)
            .variant_field::<ShmVec<u32>>("0")
            .finish();
        const TYPE_NAME: &'static ::ipc_runtime::__private::str = "Command";
    }
};
