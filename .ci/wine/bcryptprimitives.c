/* A stand-in for Windows' bcryptprimitives.dll, for running tests under Wine.
 *
 * Rust's standard library on Windows gets random bytes (for HashMap seeds) from
 * ProcessPrng in bcryptprimitives.dll, which Wine 8 (Debian 12) does not ship, so every Rust
 * program fails to start there. This DLL exports ProcessPrng on top of RtlGenRandom
 * (advapi32's SystemFunction036), which Wine has. The Wine runner (.ci/wine/run) builds it with
 * mingw and puts it beside each executable it runs; Windows itself never needs it.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
