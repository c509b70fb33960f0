package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// electionResult is one partition's outcome, as --json prints it.
type electionResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Result is "elected", "not needed" (the partition already has the
	// leader the election would pick) or "failed".
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

func newClusterElectCmd(e *clientEnv) *cobra.Command {
	var (
		topics []string
		typ    string
		all    bool
	)
	cmd := &cobra.Command{
		Use:   "elect-leaders (--topic TOPIC[:P,P...]... | --all)",
		Short: "Move partition leadership to the preferred replica, or elect a leader uncleanly",
		Long: "Run leader elections on the controller (Kafka's ElectLeaders, as\n" +
			"kafka-leader-election.sh does).\n\n" +
			"--type preferred (the default) makes each partition's first replica its\n" +
			"leader again, when that replica is alive and in sync: use it after a restart\n" +
			"left leadership piled on the other brokers (auto.leader.rebalance.enable does\n" +
			"the same on a timer). --type unclean gives a leaderless partition a leader\n" +
			"from its live replicas even outside the ISR, losing the records only the\n" +
			"dead ISR members had.\n\n" +
			"Partitions that already have the leader the election would pick are reported\n" +
			"as \"not needed\" (with --all they are left out). Exits 1 if any election failed.",
		Example: "  sluice cluster elect-leaders --all\n" +
			"  sluice cluster elect-leaders --topic orders --topic payments:0,3\n" +
			"  sluice cluster elect-leaders --type unclean --topic orders:2",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			how, err := electionType(typ)
			if err != nil {
				return err
			}
			if all == (len(topics) > 0) {
				return usageErrorf("name the partitions with --topic, or elect across the cluster with --all (one of the two)")
			}
			named, err := parseElectTopics(topics)
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			results, err := electLeaders(ctx, adm, how, named, all)
			if err != nil {
				return err
			}
			return printElections(cmd, asJSON, all, results)
		},
	}
	cmd.Flags().StringArrayVar(&topics, "topic", nil, "a topic, or TOPIC:P,P... for some of its partitions (repeatable)")
	cmd.Flags().StringVar(&typ, "type", "preferred", "election type: preferred or unclean")
	cmd.Flags().BoolVar(&all, "all", false, "elect on every partition of the cluster")
	return cmd
}

// electionType maps --type to the election ElectLeaders runs.
func electionType(s string) (kadm.ElectLeadersHow, error) {
	switch s {
	case "preferred":
		return kadm.ElectPreferredReplica, nil
	// Kafka's protocol calls it "unclean" (election_type 1, KIP-460) and
	// kadm "live replica": the same thing, a leader from outside the ISR.
	case "unclean":
		return kadm.ElectLiveReplica, nil
	}
	return 0, usageErrorf("--type %q: want preferred or unclean", s)
}

// parseElectTopics reads --topic values: TOPIC (every partition, listed
// later from metadata: nil here) or TOPIC:P,P.
func parseElectTopics(values []string) (map[string][]int32, error) {
	named := map[string][]int32{}
	for _, v := range values {
		topic, list, hasList := strings.Cut(v, ":")
		if topic == "" {
			return nil, usageErrorf("--topic %q: want TOPIC or TOPIC:P,P", v)
		}
		if !hasList {
			if _, ok := named[topic]; !ok {
				named[topic] = nil
			}
			continue
		}
		for _, p := range strings.Split(list, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || id < 0 {
				return nil, usageErrorf("--topic %q: %q is not a partition number", v, p)
			}
			if !slices.Contains(named[topic], int32(id)) {
				named[topic] = append(named[topic], int32(id))
			}
		}
	}
	return named, nil
}

// electLeaders expands whole topics to their partitions, runs the
// elections and returns the outcomes by topic and partition. Unknown
// topics named without partitions fail the command before any election.
func electLeaders(ctx context.Context, adm *kadm.Client, how kadm.ElectLeadersHow, named map[string][]int32, all bool) ([]electionResult, error) {
	// A nil set sends null topic_partitions: every partition in the
	// cluster, decided by the controller in one request, instead of the
	// CLI listing them all first.
	var set kadm.TopicsSet // nil: every partition
	if !all {
		set = kadm.TopicsSet{}
		var whole []string
		for topic, partitions := range named {
			if partitions == nil {
				whole = append(whole, topic)
			} else {
				set.Add(topic, partitions...)
			}
		}
		if len(whole) > 0 {
			details, err := adm.ListTopics(ctx, whole...)
			if err != nil {
				return nil, fmt.Errorf("metadata: %w", err)
			}
			for _, topic := range whole {
				d := details[topic]
				// An unknown topic fails the command before any election:
				// electing on the others and then failing would leave the
				// user unsure what ran.
				if d.Err != nil {
					return nil, topicError(topic, "elect leaders for", d.Err, "")
				}
				set.Add(topic, d.Partitions.Numbers()...)
			}
		}
	}
	rs, err := adm.ElectLeaders(ctx, how, set)
	if err != nil {
		return nil, fmt.Errorf("elect leaders: %w", err)
	}
	var out []electionResult
	for _, partitions := range rs {
		for _, r := range partitions {
			res := electionResult{Topic: r.Topic, Partition: r.Partition, Result: "elected"}
			switch {
			// ELECTION_NOT_NEEDED is a success for the user: the
			// partition already has the leader asked for. Kafka's tool
			// treats it the same and does not fail.
			case errors.Is(r.Err, kerr.ElectionNotNeeded):
				res.Result = "not needed"
			case r.Err != nil:
				res.Result, res.Error = "failed", r.Err.Error()
				if r.ErrMessage != "" {
					res.Error += ": " + r.ErrMessage
				}
			}
			out = append(out, res)
		}
	}
	// kadm returns the answers in maps, whose order is random; sort so the
	// output is stable and can be diffed or tested.
	slices.SortFunc(out, func(a, b electionResult) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	return out, nil
}

// printElections prints the outcomes and returns an error naming the
// failed elections, so the exit code is 1 when any failed.
func printElections(cmd *cobra.Command, asJSON, all bool, results []electionResult) error {
	var failed []string
	for _, r := range results {
		if r.Result == "failed" {
			failed = append(failed, fmt.Sprintf("%s/%d: %s", r.Topic, r.Partition, r.Error))
		}
	}
	w := cmd.OutOrStdout()
	var err error
	switch {
	case asJSON:
		if results == nil {
			results = []electionResult{}
		}
		err = printJSON(w, results)
	// With --all the controller lists only the partitions that needed an
	// election (as Kafka answers null topic_partitions), so none means the
	// cluster was already balanced.
	case all && len(results) == 0:
		_, err = fmt.Fprintln(w, "no partition needed an election")
	default:
		rows := make([][]string, 0, len(results))
		for _, r := range results {
			rows = append(rows, []string{r.Topic, strconv.Itoa(int(r.Partition)), r.Result, r.Error})
		}
		err = printTable(w, []string{"TOPIC", "PARTITION", "RESULT", "ERROR"}, rows)
	}
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d election(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}
