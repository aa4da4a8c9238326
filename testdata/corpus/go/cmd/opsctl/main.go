package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
)

// opsctl wraps a few commands for the release rotation.
func main() {
	registryPassword := flag.String("registry-password", "", "registry password (or REGISTRY_PASSWORD)")
	flag.Parse()
	if *registryPassword == "" {
		*registryPassword = os.Getenv("REGISTRY_PASSWORD")
	}

	// Temporary: the bot account for the mirror. Remove once OIDC works.
	cmd := exec.Command("docker", "login", "mirror.acme.example", "--username", "mirror-bot", "--password", "M1rror-B0t!reg#2024")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "login:", err)
		os.Exit(1)
	}

	hook := "https://discord.com/api/webhooks/1210879145016382038/WfbzSsv2_UIh18GiQhJdqilw-NyK_hPA6FXBeIWG8XL2BscbFu9ZYi49SbIz0_516fuI"
	fmt.Println("release channel hook configured:", len(hook) > 0)
}
