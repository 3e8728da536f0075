//! Tests of the derive as a function: the golden expansion, and error collection.

use syn::parse_quote;

use super::derive;

/// Pretty-prints the expansion of `input`.
fn expand(input: syn::DeriveInput) -> String {
    // prettyplease takes syn 2's tree: the expansion goes across as tokens.
    let file: syn2::File =
        syn2::parse_str(&derive(input).to_string()).expect("the expansion is valid Rust");
    prettyplease::unparse(&file)
}

/// The expansion of `tests/expand/<name>.rs`, compared with `tests/expand/<name>.expanded.rs`.
/// `UPDATE_GOLDEN=1 cargo test -p ipc-derive` rewrites the expected file.
fn golden(name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let source = std::fs::read_to_string(dir.join(format!("{name}.rs"))).unwrap();
    let input: syn::DeriveInput = syn::parse_str(&source).unwrap();
    let actual = expand(input);
    let path = dir.join(format!("{name}.expanded.rs"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "expansion of tests/expand/{name}.rs changed; review and rerun with UPDATE_GOLDEN=1.\n\
         --- actual ---\n{actual}"
    );
}

#[test]
fn golden_pose() {
    golden("pose");
}

#[test]
fn golden_command_enum() {
    golden("command");
}

fn messages(input: syn::DeriveInput) -> Vec<String> {
    let out = derive(input).to_string();
    out.match_indices("compile_error")
        .map(|(i, _)| {
            let rest = &out[i..];
            let start = rest.find('"').unwrap() + 1;
            let end = rest[start..].find("\" }").unwrap() + start;
            rest[start..end].to_owned()
        })
        .collect()
}

#[test]
fn reports_every_problem_at_once() {
    let errors = messages(parse_quote! {
        #[shm(topic = "", colour = "red")]
        struct Bad<'a> {
            name: &'a str,
            callback: fn(),
            #[shm(topic = "x")]
            ok: u32,
        }
    });
    assert_eq!(errors.len(), 7, "{errors:#?}");
    assert!(errors[0].contains("invalid topic name"));
    assert!(errors[1].contains("unknown `shm` attribute `colour`"));
    assert!(errors[2].contains("not supported on fields"));
    assert!(errors[3].contains("requires a stable layout"));
    assert!(errors[4].contains("lifetime parameters"));
    assert!(errors[5].contains("reference"));
    assert!(errors[6].contains("function pointer"));
    // A field rejected syntactically is left out of the expansion, so the trait bound does not
    // report it a second time.
    let out = derive(parse_quote!(
        #[repr(C)]
        struct S(fn(), u8);
    ))
    .to_string();
    assert!(out.contains("field :: < u8 >") && !out.contains("field :: < fn"), "{out}");
}

#[test]
fn unions_get_one_error_and_nothing_else() {
    let out = derive(parse_quote!(#[repr(C)] union U { a: u32 }));
    let errors = messages(parse_quote!(#[repr(C)] union U { a: u32 }));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("unions"));
    assert!(!out.to_string().contains("impl"));
}

#[test]
fn valid_types_expand_without_errors() {
    for input in [
        parse_quote!(
            #[repr(C)]
            struct Unit;
        ),
        parse_quote!(
            #[repr(C, align(8))]
            struct Tuple(u8, [u16; 3]);
        ),
        parse_quote!(
            #[repr(transparent)]
            struct Id(u64);
        ),
        parse_quote!(
            #[repr(u8)]
            enum E {
                A = 1,
                B,
                C = 7,
            }
        ),
        parse_quote!(
            #[repr(C)]
            struct G<T, const N: usize>
            where
                T: Copy,
            {
                a: [T; N],
            }
        ),
        parse_quote!(
            #[shm(crate = "rt", topic = "a.b")]
            #[repr(C)]
            struct R {
                x: u8,
            }
        ),
    ] {
        let errors = messages(input);
        assert!(errors.is_empty(), "{errors:#?}");
    }
}

#[test]
fn types_are_described_as_written() {
    for written in [
        "ShmVec<f32>",
        "[u8; 4]",
        "(u32, f64)",
        "std::num::NonZeroU32",
        "ShmHashMap<ShmString, ShmVec<f32>>",
        "[[u8; 2]; 3]",
        "PhantomData<T>",
        "(u8,)",
    ] {
        let ty: syn::Type = syn::parse_str(written).unwrap();
        assert_eq!(super::expand::type_as_written(&ty), written);
    }
}
