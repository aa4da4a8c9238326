package rules

import "strings"

// Internal infrastructure: private IPv4 addresses and internal hostnames
// (.internal, .local, .corp, .lan, .intranet, .home.arpa). They are HOST
// findings with the Monitor action: reported but forwarded unchanged by
// default, because rewriting every address in a config file costs the model
// more than it protects; a policy can switch them to tokenize. Loopback
// (127.0.0.0/8, localhost) reveals nothing about a network and is not
// reported.
func infra() []Rule {
	return []Rule{
		{
			ID:          "private-ipv4",
			Description: "Private IPv4 address (10/8, 172.16/12, 192.168/16)",
			Category:    HOST,
			Action:      Monitor,
			Keywords:    []string{"10.", "172.", "192.168."},
			Before:      1,
			Pattern:     `(?:^|[^\w.])((?:10|172|192)\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:[^\w.]|$)`,
			SecretGroup: 1,
			MaxLen:      17,
			Validate:    PrivateIPv4,
			Positives: []Sample{
				yamlSample("host", "10.12.0.41"),
				textSample("upstream backend {\n  server ", "192.168.1.20", ":8080;\n}\n"),
				textSample("ssh -J bastion ubuntu@", "172.20.3.7", "\n"),
			},
			Negatives: []string{
				"Microsoft Windows [Version 10.0.19045.3803]\n",
				"dns: 8.8.8.8\n",
				"cidr: 172.32.0.1\n",
				"version: 1.10.2.3.4\n",
				"addr: 10.300.1.1\n",
			},
		},
		{
			ID:          "internal-hostname",
			Description: "Internal hostname (.internal, .local, .localdomain, .corp, .lan, .intranet, .home.arpa)",
			Category:    HOST,
			Action:      Monitor,
			Keywords:    []string{".internal", ".local", ".corp", ".lan", ".intranet", ".home.arpa"},
			Before:      128,
			Pattern:     `(?i)(?:^|[^A-Za-z0-9.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:internal|local|localdomain|corp|lan|intranet|home\.arpa))(?:[^A-Za-z0-9_.(-]|\.(?:[^A-Za-z0-9_-]|$)|$)`,
			SecretGroup: 1,
			MaxLen:      16,
			Validate:    notCodeReceiver,
			Positives: []Sample{
				envSample("DB_HOST", "db-01.prod.internal"),
				textSample("ldapsearch -H ldaps://", "ldap.acme.corp", ":636 -b dc=acme,dc=corp\n"),
				textSample("curl http://", "printer.lan", "/status\n"),
				yamlSample("endpoint", "api.billing.svc.cluster.local"),
			},
			Negatives: []string{
				"_local = threading.local()\n",
				"from settings.local import *\n",
				"package com.acme.corp;\n",
				"cp config.local.json config.json\n",
				"go get example.com/x/internal/foo\n",
			},
		},
	}
}

// notCodeReceiver refuses "hostnames" that are code (this.local,
// settings.local, threading.local) or a reversed domain (com.acme.corp).
func notCodeReceiver(b []byte) bool {
	labels := strings.Split(strings.ToLower(string(b)), ".")
	switch labels[0] {
	case "com", "org", "net", "io":
		return false
	case "this", "self", "threading", "window", "settings", "config", "os", "env",
		"process", "app", "module", "exports", "super", "cls", "ctx", "localhost":
		return len(labels) > 2
	}
	return true
}
