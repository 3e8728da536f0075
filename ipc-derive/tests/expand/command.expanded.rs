#[doc(hidden)]
const _: () = {
    #[automatically_derived]
    unsafe impl ::ipc_runtime::ShmSafe for Command {
        const LAYOUT_FINGERPRINT: ::ipc_runtime::__private::u64 = <Self as ::ipc_runtime::ShmMessage>::FINGERPRINT;
        const NO_UNINIT: ::ipc_runtime::__private::bool = false;
        const MAY_BE_INVALID: ::ipc_runtime::__private::bool = true;
        #[inline]
        unsafe fn check_bits(
            value: *const Self,
        ) -> ::ipc_runtime::__private::CheckResult {
            unsafe {
                ::ipc_runtime::__private::validity::check_enum(
                    value.cast::<::ipc_runtime::__private::u8>(),
                    const {
                        &[
                            ::ipc_runtime::__private::Part::Str("Command"),
                            ::ipc_runtime::__private::Part::Str("C,u8"),
                            ::ipc_runtime::__private::Part::Layout(
                                ::ipc_runtime::__private::size_of::<Self>(),
                                ::ipc_runtime::__private::align_of::<Self>(),
                            ),
                            ::ipc_runtime::__private::Part::U64(3u64),
                            ::ipc_runtime::__private::Part::Str("Stop"),
                            ::ipc_runtime::__private::Part::I128(0),
                            ::ipc_runtime::__private::Part::U64(0u64),
                            ::ipc_runtime::__private::Part::Str("Go"),
                            ::ipc_runtime::__private::Part::I128(
                                (::ipc_runtime::__private::identity::<
                                    ::ipc_runtime::__private::u8,
                                >(10) as ::ipc_runtime::__private::i128),
                            ),
                            ::ipc_runtime::__private::Part::U64(1u64),
                            ::ipc_runtime::__private::variant_field::<f32>("speed"),
                            ::ipc_runtime::__private::Part::Str("Follow"),
                            ::ipc_runtime::__private::Part::I128(
                                (::ipc_runtime::__private::identity::<
                                    ::ipc_runtime::__private::u8,
                                >(10) as ::ipc_runtime::__private::i128)
                                    .wrapping_add(1),
                            ),
                            ::ipc_runtime::__private::Part::U64(1u64),
                            ::ipc_runtime::__private::variant_field::<ShmVec<u32>>("0"),
                        ]
                    },
                    ::ipc_runtime::__private::size_of::<::ipc_runtime::__private::u8>(),
                    true,
                )
            }
        }
    }
    #[automatically_derived]
    impl ::ipc_runtime::ShmMessage for Command {
        const FINGERPRINT: ::ipc_runtime::__private::u64 = ::ipc_runtime::__private::fingerprint::of(
            &[
                ::ipc_runtime::__private::Part::Str("Command"),
                ::ipc_runtime::__private::Part::Str("C,u8"),
                ::ipc_runtime::__private::Part::Layout(
                    ::ipc_runtime::__private::size_of::<Self>(),
                    ::ipc_runtime::__private::align_of::<Self>(),
                ),
                ::ipc_runtime::__private::Part::U64(3u64),
                ::ipc_runtime::__private::Part::Str("Stop"),
                ::ipc_runtime::__private::Part::I128(0),
                ::ipc_runtime::__private::Part::U64(0u64),
                ::ipc_runtime::__private::Part::Str("Go"),
                ::ipc_runtime::__private::Part::I128(
                    (::ipc_runtime::__private::identity::<
                        ::ipc_runtime::__private::u8,
                    >(10) as ::ipc_runtime::__private::i128),
                ),
                ::ipc_runtime::__private::Part::U64(1u64),
                ::ipc_runtime::__private::variant_field::<f32>("speed"),
                ::ipc_runtime::__private::Part::Str("Follow"),
                ::ipc_runtime::__private::Part::I128(
                    (::ipc_runtime::__private::identity::<
                        ::ipc_runtime::__private::u8,
                    >(10) as ::ipc_runtime::__private::i128)
                        .wrapping_add(1),
                ),
                ::ipc_runtime::__private::Part::U64(1u64),
                ::ipc_runtime::__private::variant_field::<ShmVec<u32>>("0"),
            ],
        );
        const TYPE_NAME: &'static ::ipc_runtime::__private::str = "Command";
    }
};
