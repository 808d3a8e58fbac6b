package main

import (
	"log"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// pinnedCaddy: Caddy runs on CPU 0 (-pin), the driver on CPU 1.
var pinnedCaddy bool

// pinEnv marks the driver as already running under taskset.
const pinEnv = "SGID_BENCH_PINNED"

// pinSelf runs the driver again under taskset -c 1, unless it already is:
// its children (wrk) inherit the CPU, and Go sizes GOMAXPROCS to it. Caddy,
// started with taskset -c 0, then has its core to itself, so its CPU per
// request is not inflated by the load sharing it.
func pinSelf() {
	if runtime.NumCPU() < 2 && os.Getenv(pinEnv) == "" {
		log.Fatal("-pin needs 2 CPUs")
	}
	if os.Getenv(pinEnv) != "" {
		return
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		log.Fatal("-pin needs taskset (util-linux)")
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	args := append([]string{"taskset", "-c", "1", self}, os.Args[1:]...)
	log.Fatal(syscall.Exec(taskset, args, append(os.Environ(), pinEnv+"=1")))
}
