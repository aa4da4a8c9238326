// Command takumo-aegis finds secrets in files and tokenizes them; see
// package cli for the commands. main only wires signals and the process
// exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/takumo/aegis/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
