package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCompleteTopicsOffersTheClustersTopics(t *testing.T) {
	addr := startBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 1, -1, nil, "orders", "ops", "payments"); err != nil {
		t.Fatal(err)
	}
	e := &clientEnv{brokers: addr, timeout: time.Second}
	cmd := &cobra.Command{}
	cmd.SetContext(ctx)
	got, directive := completeTopics(e)(cmd, []string{"ops"}, "o")
	if strings.Join(got, ",") != "orders" {
		t.Errorf("completing %q after ops offered %q, want orders", "o", got)
	}
	if directive != cobra.ShellCompDirectiveNoFileComp {
		t.Errorf("directive %v, want NoFileComp", directive)
	}
	got, _ = completeTopics(e)(cmd, nil, "__")
	for _, name := range got {
		if !strings.HasPrefix(name, "__") {
			t.Errorf("completing %q offered %q", "__", got)
		}
	}
}

func TestCompleteOffersNothingWithoutABroker(t *testing.T) {
	e := &clientEnv{brokers: deadBroker(t), timeout: time.Second}
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	if got, _ := completeGroups(e)(cmd, nil, ""); len(got) != 0 {
		t.Errorf("offered %q with no broker", got)
	}
}
