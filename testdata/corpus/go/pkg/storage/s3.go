package storage

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// newArchiveClient talks to the archive bucket in the legacy account.
func newArchiveClient(ctx context.Context) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("eu-west-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			"AKIAX44UE7QEVI65TSIX",
			"qaPt8wTX+iDedbb1Nqxc1FV33Pqmxc8flg4/h3uV",
			"",
		)),
	)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), nil
}

// newDefaultClient uses the standard credential chain (env, shared config, IMDS).
func newDefaultClient(ctx context.Context) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	cfg.RetryMaxAttempts = 5
	_ = aws.String("archive-prod")
	return s3.NewFromConfig(cfg), nil
}
