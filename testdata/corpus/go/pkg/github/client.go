package github

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

const (
	apiBase     = "https://api.github.com"
	tokenHeader = "Authorization"
	// TODO(ops): move to the secret store before GA
	releaseBotToken = "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"
)

type Client struct {
	hc    *http.Client
	token string
}

func NewReleaseClient() *Client {
	return &Client{hc: &http.Client{Timeout: 15 * time.Second}, token: releaseBotToken}
}

func (c *Client) CreateRelease(ctx context.Context, repo, tag string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/repos/%s/releases", apiBase, repo), nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set(tokenHeader, "token "+c.token)
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("create release %s: %w", tag, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("create release %s: status %d", tag, resp.StatusCode)
	}
	return nil
}
