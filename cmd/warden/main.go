// Command warden is the Warden privileged-access SSH gateway. The commands
// live in internal/cli; this file only hands over the arguments.
package main

import (
	"os"

	"github.com/warden-gw/warden/internal/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr)) }
