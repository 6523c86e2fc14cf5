package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func runDown(args []string) error {
	dir, err := dirFlag("down", args)
	if err != nil {
		return err
	}
	stopped := stopAll(dir)
	if stopped == 0 {
		fmt.Printf("nothing running in %s\n", dir)
	} else {
		fmt.Printf("stopped %d component(s) in %s\n", stopped, dir)
	}
	return nil
}

func runStatus(args []string) error {
	dir, err := dirFlag("status", args)
	if err != nil {
		return err
	}
	running := 0
	for _, name := range componentNames {
		pid, alive := componentPID(dir, name)
		switch {
		case alive:
			running++
			fmt.Printf("%-20s running (pid %d)\n", name, pid)
		case pid > 0:
			fmt.Printf("%-20s stopped (stale pid %d)\n", name, pid)
		default:
			fmt.Printf("%-20s stopped\n", name)
		}
	}
	if running != len(componentNames) {
		return fmt.Errorf("%d of %d components running", running, len(componentNames))
	}
	return nil
}

func dirFlag(cmd string, args []string) (string, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	dir := fs.String("dir", "", "the directory given to `up`")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if *dir == "" {
		return "", errors.New("--dir is required")
	}
	return filepath.Abs(*dir)
}

func pidFile(dir, name string) string { return filepath.Join(dir, name+".pid") }

// componentPID reads DIR/NAME.pid and tells whether that pid is a live testenv process (a pid
// the kernel reused for something else does not count).
func componentPID(dir, name string) (int, bool) {
	data, err := os.ReadFile(pidFile(dir, name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if !processAlive(pid) {
		return pid, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && !strings.Contains(string(cmdline), name) {
		return pid, false
	}
	return pid, true
}

func allRunning(dir string) bool {
	for _, name := range componentNames {
		if _, alive := componentPID(dir, name); !alive {
			return false
		}
	}
	return true
}

// stopAll stops the components of dir in reverse start order: SIGTERM, then SIGKILL after a
// grace period. It returns how many were running.
func stopAll(dir string) int {
	stopped := 0
	for i := len(componentNames) - 1; i >= 0; i-- {
		name := componentNames[i]
		pid, alive := componentPID(dir, name)
		if alive {
			stopped++
			_ = syscall.Kill(pid, syscall.SIGTERM)
			deadline := time.Now().Add(10 * time.Second)
			for processAlive(pid) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if processAlive(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_ = os.Remove(pidFile(dir, name))
	}
	return stopped
}

// processAlive tells whether pid names a running process (a zombie counts as gone).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// kubernetesVersion is the version of k8s.io/kubernetes this binary was built from.
func kubernetesVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "k8s.io/kubernetes" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
