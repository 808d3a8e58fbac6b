package redistest

import "syscall"

// sysProcAttr has the kernel kill redis-server if the test binary dies before
// its cleanup runs (a timeout panic, a SIGKILL), so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
