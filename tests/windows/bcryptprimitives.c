/* Test-only stand-in for Windows' bcryptprimitives.dll, for running nasgate's Windows test
 * binaries under Wine 8, whose bcryptprimitives lacks ProcessPrng (which Rust's standard
 * library imports for its random numbers). scripts/windows.sh builds it and puts it next to
 * the test executables; it is never shipped with nasgate.exe. ProcessPrng hands the request to
 * RtlGenRandom (SystemFunction036 in advapi32), the system CSPRNG. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
