package loadgen

import (
	"os"
	"syscall"
)

func syscallZero() os.Signal { return syscall.Signal(0) }
