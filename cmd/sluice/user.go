package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/node"
	"github.com/sluicelog/sluice/internal/vfs"
)

// userRow is one user's credential in `user list`, and its --json form.
type userRow struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Iterations int32  `json:"iterations"`
}

func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage SASL/SCRAM users: create, list, delete",
		Long: "Users are SCRAM credentials in the cluster's metadata log (salted keys, never the\n" +
			"password); SASL PLAIN checks passwords against them too. Online, through\n" +
			"AlterUserScramCredentials and DescribeUserScramCredentials. The first admin is\n" +
			"created offline, before the node's first start: `user create --data-dir`.",
		Example: "  sluice user create admin --password-file admin.pass --data-dir ./data\n" +
			"  sluice user create alice --password-file alice.pass --mechanism SCRAM-SHA-512\n" +
			"  sluice user list\n  sluice user delete alice",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	e := newClientEnv(cmd)
	cmd.AddCommand(newUserCreateCmd(e), newUserListCmd(e), newUserDeleteCmd(e))
	return cmd
}

func newUserCreateCmd(e *clientEnv) *cobra.Command {
	var passwordFile, mechanism, dataDir string
	var iterations int32
	cmd := &cobra.Command{
		Use:   "create NAME --password-file FILE [--mechanism SCRAM-SHA-256|SCRAM-SHA-512] [--data-dir DIR]",
		Short: "Create a user, or change its password",
		Long: "Sets NAME's SCRAM credential for --mechanism. With --data-dir it writes the\n" +
			"credential into that data dir, offline, for the node to add at its next start\n" +
			"(as kafka-storage format --add-scram); otherwise it asks the cluster.\n" +
			"--password-file is the new user's password here; the connection's own password,\n" +
			"when SASL is used, comes from $" + passwordEnv + " or the profile.",
		Example: "  sluice user create admin --password-file admin.pass --mechanism SCRAM-SHA-256 --data-dir ./data",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if passwordFile == "" {
				return usageErrorf("--password-file is required: a file holding the new password")
			}
			mech, ok := metadata.ParseScramMechanism(strings.ToUpper(mechanism))
			if !ok {
				return usageErrorf("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
			}
			if iterations < auth.ScramMinIterations || iterations > auth.ScramMaxIterations {
				return usageErrorf("--iterations %d: want %d to %d", iterations, auth.ScramMinIterations, auth.ScramMaxIterations)
			}
			password, err := readPasswordFile(passwordFile)
			if err != nil {
				return failure{err}
			}
			if password == "" {
				return usageErrorf("%s is empty", passwordFile)
			}
			if dataDir != "" {
				return createUserOffline(cmd, args[0], password, mech, iterations, dataDir)
			}
			return createUserOnline(cmd, e, args[0], password, mech, iterations)
		},
	}
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "file holding the new user's password (trailing newline ignored)")
	cmd.Flags().StringVar(&mechanism, "mechanism", auth.MechanismScramSHA256, "SCRAM-SHA-256 or SCRAM-SHA-512")
	cmd.Flags().Int32Var(&iterations, "iterations", 8192, "PBKDF2 iterations (4096 to 16384)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "write the credential into this data dir for the node's next start, offline")
	return cmd
}

// createUserOffline derives the credential here and stores only its keys.
func createUserOffline(cmd *cobra.Command, user, password string, mech metadata.ScramMechanism, iterations int32, dataDir string) error {
	salt := make([]byte, 24)
	_, _ = rand.Read(salt) // crypto/rand.Read does not fail since Go 1.24
	salted, err := auth.SaltPassword(mech.String(), password, salt, int(iterations))
	if err != nil {
		return failure{err}
	}
	stored, server, err := auth.ScramKeys(mech.String(), salted)
	if err != nil {
		return failure{err}
	}
	cred := metadata.UserScramCredential{Name: user, Mechanism: mech, Salt: salt, StoredKey: stored, ServerKey: server, Iterations: iterations}
	if err := node.AddBootstrapCredential(vfs.OS(), dataDir, cred); err != nil {
		return failure{err}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "user %s (%s) will be created when the node on %s starts\n", user, mech, dataDir)
	return nil
}

func createUserOnline(cmd *cobra.Command, e *clientEnv, user, password string, mech metadata.ScramMechanism, iterations int32) error {
	ctx, adm, done, err := e.adminSession(cmd.Context())
	if err != nil {
		return failure{err}
	}
	defer done()
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: kadm.ScramMechanism(mech), Iterations: iterations, Password: password}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return failure{fmt.Errorf("create user %s: %w", user, err)}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "user %s (%s) set\n", user, mech)
	return nil
}

func newUserListCmd(e *clientEnv) *cobra.Command {
	return &cobra.Command{
		Use:     "list [NAME...]",
		Short:   "List users and their SCRAM mechanisms",
		Example: "  sluice user list\n  sluice user list alice --json",
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return failure{err}
			}
			defer done()
			described, err := adm.DescribeUserSCRAMs(ctx, args...)
			if err == nil {
				err = described.Error()
			}
			if err != nil {
				return failure{fmt.Errorf("list users: %w", err)}
			}
			var rows []userRow
			for _, d := range described.Sorted() {
				for _, info := range d.CredInfos {
					rows = append(rows, userRow{User: d.User, Mechanism: metadata.ScramMechanism(info.Mechanism).String(), Iterations: info.Iterations})
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			table := make([][]string, 0, len(rows))
			for _, r := range rows {
				table = append(table, []string{r.User, r.Mechanism, strconv.Itoa(int(r.Iterations))})
			}
			return printTable(cmd.OutOrStdout(), []string{"USER", "MECHANISM", "ITERATIONS"}, table)
		},
	}
}

func newUserDeleteCmd(e *clientEnv) *cobra.Command {
	var mechanism string
	cmd := &cobra.Command{
		Use:     "delete NAME [--mechanism M]",
		Short:   "Delete a user's SCRAM credentials (every mechanism unless --mechanism)",
		Example: "  sluice user delete alice\n  sluice user delete alice --mechanism SCRAM-SHA-256",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return failure{err}
			}
			defer done()
			var deletes []kadm.DeleteSCRAM
			if mechanism != "" {
				mech, ok := metadata.ParseScramMechanism(strings.ToUpper(mechanism))
				if !ok {
					return usageErrorf("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
				}
				deletes = append(deletes, kadm.DeleteSCRAM{User: args[0], Mechanism: kadm.ScramMechanism(mech)})
			} else {
				described, err := adm.DescribeUserSCRAMs(ctx, args[0])
				if err == nil {
					err = described.Error()
				}
				if err != nil {
					return failure{fmt.Errorf("delete user %s: %w", args[0], err)}
				}
				for _, info := range described[args[0]].CredInfos {
					deletes = append(deletes, kadm.DeleteSCRAM{User: args[0], Mechanism: info.Mechanism})
				}
			}
			if len(deletes) == 0 {
				return failure{errors.New("user " + args[0] + " has no credentials")}
			}
			res, err := adm.AlterUserSCRAMs(ctx, deletes, nil)
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				return failure{fmt.Errorf("delete user %s: %w", args[0], err)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d credential(s) of %s\n", len(deletes), args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&mechanism, "mechanism", "", "only this mechanism's credential")
	return cmd
}
