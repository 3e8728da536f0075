#[doc(hidden)]
const _: () = {
    #[automatically_derived]
    unsafe impl<T: ::ipc_runtime::ShmSafe, const N: usize> ::ipc_runtime::ShmSafe
    for Pose<T, N>
    where
        T: Copy,
    {
        const LAYOUT_FINGERPRINT: ::ipc_runtime::__private::u64 = <Self as ::ipc_runtime::ShmMessage>::FINGERPRINT;
        const NO_UNINIT: ::ipc_runtime::__private::bool = ::ipc_runtime::__private::fingerprint::no_uninit(
            &[
                ::ipc_runtime::__private::Part::Str("Pose<T, N>"),
                ::ipc_runtime::__private::Part::Str("C,align(16)"),
                ::ipc_runtime::__private::Part::Layout(
                    ::ipc_runtime::__private::size_of::<Self>(),
                    ::ipc_runtime::__private::align_of::<Self>(),
                ),
                ::ipc_runtime::__private::Part::U64(4u64),
                ::ipc_runtime::__private::field::<
                    f64,
                >("x", ::ipc_runtime::__private::offset_of!(Self, x)),
                ::ipc_runtime::__private::field::<
                    f64,
                >("y", ::ipc_runtime::__private::offset_of!(Self, y)),
                ::ipc_runtime::__private::field::<
                    ShmString,
                >("frame", ::ipc_runtime::__private::offset_of!(Self, frame)),
                ::ipc_runtime::__private::field::<
                    [T; N],
                >("samples", ::ipc_runtime::__private::offset_of!(Self, samples)),
            ],
        );
        const MAY_BE_INVALID: ::ipc_runtime::__private::bool = ::ipc_runtime::__private::fingerprint::may_be_invalid(
            &[
                ::ipc_runtime::__private::Part::Str("Pose<T, N>"),
                ::ipc_runtime::__private::Part::Str("C,align(16)"),
                ::ipc_runtime::__private::Part::Layout(
                    ::ipc_runtime::__private::size_of::<Self>(),
                    ::ipc_runtime::__private::align_of::<Self>(),
                ),
                ::ipc_runtime::__private::Part::U64(4u64),
                ::ipc_runtime::__private::field::<
                    f64,
                >("x", ::ipc_runtime::__private::offset_of!(Self, x)),
                ::ipc_runtime::__private::field::<
                    f64,
                >("y", ::ipc_runtime::__private::offset_of!(Self, y)),
                ::ipc_runtime::__private::field::<
                    ShmString,
                >("frame", ::ipc_runtime::__private::offset_of!(Self, frame)),
                ::ipc_runtime::__private::field::<
                    [T; N],
                >("samples", ::ipc_runtime::__private::offset_of!(Self, samples)),
            ],
        );
        #[inline]
        unsafe fn check_bits(
            value: *const Self,
        ) -> ::ipc_runtime::__private::CheckResult {
            unsafe {
                ::ipc_runtime::__private::validity::check_struct(
                    value.cast::<::ipc_runtime::__private::u8>(),
                    const {
                        &[
                            ::ipc_runtime::__private::Part::Str("Pose<T, N>"),
                            ::ipc_runtime::__private::Part::Str("C,align(16)"),
                            ::ipc_runtime::__private::Part::Layout(
                                ::ipc_runtime::__private::size_of::<Self>(),
                                ::ipc_runtime::__private::align_of::<Self>(),
                            ),
                            ::ipc_runtime::__private::Part::U64(4u64),
                            ::ipc_runtime::__private::field::<
                                f64,
                            >("x", ::ipc_runtime::__private::offset_of!(Self, x)),
                            ::ipc_runtime::__private::field::<
                                f64,
                            >("y", ::ipc_runtime::__private::offset_of!(Self, y)),
                            ::ipc_runtime::__private::field::<
                                ShmString,
                            >(
                                "frame",
                                ::ipc_runtime::__private::offset_of!(Self, frame),
                            ),
                            ::ipc_runtime::__private::field::<
                                [T; N],
                            >(
                                "samples",
                                ::ipc_runtime::__private::offset_of!(Self, samples),
                            ),
                        ]
                    },
                )
            }
        }
    }
    #[automatically_derived]
    impl<T: ::ipc_runtime::ShmSafe, const N: usize> ::ipc_runtime::ShmMessage
    for Pose<T, N>
    where
        T: Copy,
    {
        const FINGERPRINT: ::ipc_runtime::__private::u64 = ::ipc_runtime::__private::fingerprint::of(
            &[
                ::ipc_runtime::__private::Part::Str("Pose<T, N>"),
                ::ipc_runtime::__private::Part::Str("C,align(16)"),
                ::ipc_runtime::__private::Part::Layout(
                    ::ipc_runtime::__private::size_of::<Self>(),
                    ::ipc_runtime::__private::align_of::<Self>(),
                ),
                ::ipc_runtime::__private::Part::U64(4u64),
                ::ipc_runtime::__private::field::<
                    f64,
                >("x", ::ipc_runtime::__private::offset_of!(Self, x)),
                ::ipc_runtime::__private::field::<
                    f64,
                >("y", ::ipc_runtime::__private::offset_of!(Self, y)),
                ::ipc_runtime::__private::field::<
                    ShmString,
                >("frame", ::ipc_runtime::__private::offset_of!(Self, frame)),
                ::ipc_runtime::__private::field::<
                    [T; N],
                >("samples", ::ipc_runtime::__private::offset_of!(Self, samples)),
            ],
        );
        const TYPE_NAME: &'static ::ipc_runtime::__private::str = "Pose<T, N>";
        const FIELDS: &'static [::ipc_runtime::__private::FieldInfo] = &::ipc_runtime::__private::fingerprint::field_infos(
            &[
                ::ipc_runtime::__private::Part::Str("Pose<T, N>"),
                ::ipc_runtime::__private::Part::Str("C,align(16)"),
                ::ipc_runtime::__private::Part::Layout(
                    ::ipc_runtime::__private::size_of::<Self>(),
                    ::ipc_runtime::__private::align_of::<Self>(),
                ),
                ::ipc_runtime::__private::Part::U64(4u64),
                ::ipc_runtime::__private::field::<
                    f64,
                >("x", ::ipc_runtime::__private::offset_of!(Self, x)),
                ::ipc_runtime::__private::field::<
                    f64,
                >("y", ::ipc_runtime::__private::offset_of!(Self, y)),
                ::ipc_runtime::__private::field::<
                    ShmString,
                >("frame", ::ipc_runtime::__private::offset_of!(Self, frame)),
                ::ipc_runtime::__private::field::<
                    [T; N],
                >("samples", ::ipc_runtime::__private::offset_of!(Self, samples)),
            ],
            ["f64", "f64", "ShmString", "[T; N]"],
        );
    }
    #[automatically_derived]
    impl<T: ::ipc_runtime::ShmSafe, const N: usize> ::ipc_runtime::Topic for Pose<T, N>
    where
        T: Copy,
    {
        const NAME: &'static ::ipc_runtime::__private::str = "robot.pose";
    }
};
