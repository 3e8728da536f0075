#[doc(hidden)]
const _: () = {
    #[automatically_derived]
    unsafe impl<T: ::ipc_runtime::ShmSafe, const N: usize> ::ipc_runtime::ShmSafe
    for Pose<T, N>
    where
        T: Copy,
    {
        const LAYOUT_FINGERPRINT: ::ipc_runtime::__private::u64 = <Self as ::ipc_runtime::ShmMessage>::FINGERPRINT;
    }
    #[automatically_derived]
    impl<T: ::ipc_runtime::ShmSafe, const N: usize> ::ipc_runtime::ShmMessage
    for Pose<T, N>
    where
        T: Copy,
    {
        const FINGERPRINT: ::ipc_runtime::__private::u64 = ::ipc_runtime::__private::Fingerprint::new(
                "Pose<T, N>",
            )
            .str("C,align(16)")
            .layout(
                ::ipc_runtime::__private::size_of::<Self>(),
                ::ipc_runtime::__private::align_of::<Self>(),
            )
            .u64(4u64)
            .field::<f64>("x", ::ipc_runtime::__private::offset_of!(Self, x))
            .field::<f64>("y", ::ipc_runtime::__private::offset_of!(Self, y))
            .field::<
                ShmString,
            >("frame", ::ipc_runtime::__private::offset_of!(Self, frame))
            .field::<
                [T; N],
            >("samples", ::ipc_runtime::__private::offset_of!(Self, samples))
            .finish();
        const TYPE_NAME: &'static ::ipc_runtime::__private::str = "Pose<T, N>";
    }
    #[automatically_derived]
    impl<T: ::ipc_runtime::ShmSafe, const N: usize> ::ipc_runtime::Topic for Pose<T, N>
    where
        T: Copy,
    {
        const NAME: &'static ::ipc_runtime::__private::str = "robot.pose";
    }
};
