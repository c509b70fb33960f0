package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// profileJSON is one profile in `profile list|show --json`.
type profileJSON struct {
	Name    string `json:"name"`
	Brokers string `json:"brokers"`
	Current bool   `json:"current"`
}

func newProfileCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Manage client profiles: named settings (brokers) used instead of --brokers",
		Long: "A profile is a named set of client settings kept in " + profilesFileName + " under the\n" +
			"user's config directory ($XDG_CONFIG_HOME/sluice, else ~/.config/sluice). Client\n" +
			"commands use --profile NAME, else $" + profileEnv + ", else the current profile;\n" +
			"--brokers and $" + brokersEnv + " still win over a profile's brokers.",
		Example: "  sluice profile create local --brokers localhost:9092\n" +
			"  sluice profile use local\n" +
			"  sluice profile list",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newProfileListCmd(), newProfileShowCmd(), newProfileUseCmd(), newProfileCreateCmd(), newProfileDeleteCmd())
	return cmd
}

// completeProfiles offers the names in the profiles file.
func completeProfiles(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	pf, err := loadProfiles()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return pf.names(), cobra.ShellCompDirectiveNoFileComp
}

// The profile commands declare their own --json: they never talk to a
// cluster, so they are not under a command with the client flags (which
// bring --json, --brokers and --timeout along).
func newProfileListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the profiles; * marks the current one",
		Example: "  sluice profile list\n  sluice profile list --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pf, err := loadProfiles()
			if err != nil {
				return err
			}
			out := make([]profileJSON, 0, len(pf.profiles))
			rows := make([][]string, 0, len(pf.profiles))
			for _, p := range pf.profiles {
				out = append(out, profileJSON{Name: p.Name, Brokers: p.Brokers, Current: p.Name == pf.current})
				mark := ""
				if p.Name == pf.current {
					mark = "*"
				}
				rows = append(rows, []string{p.Name, p.Brokers, mark})
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			return printTable(cmd.OutOrStdout(), []string{"NAME", "BROKERS", "CURRENT"}, rows)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func newProfileShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "show [NAME]",
		Short:             "Show a profile's settings (default: the one client commands would use)",
		Example:           "  sluice profile show\n  sluice profile show prod --json",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeProfiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			pf, err := loadProfiles()
			if err != nil {
				return err
			}
			// Without a name, show the profile a client command would use
			// right now: $SLUICE_PROFILE wins over the file's current one,
			// as it does for client commands.
			name := pf.current
			if len(args) == 1 {
				name = args[0]
			} else if v := envProfile(); v != "" {
				name = v
			}
			if name == "" {
				return fmt.Errorf("no current profile in %s: name one, or pick one with sluice profile use", pf.path)
			}
			p, err := pf.get(name)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), profileJSON{Name: p.Name, Brokers: p.Brokers, Current: p.Name == pf.current})
			}
			return printFields(cmd.OutOrStdout(), [2]string{"Name", p.Name}, [2]string{"Brokers", p.Brokers},
				[2]string{"Current", fmt.Sprint(p.Name == pf.current)}, [2]string{"File", pf.path})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func newProfileUseCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "use NAME",
		Short:             "Make a profile the current one",
		Example:           "  sluice profile use prod",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeProfiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := editProfile(args[0], func(pf *profilesFile) { pf.current = args[0] }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "current profile: %s\n", args[0])
			return nil
		},
	}
}

func newProfileCreateCmd() *cobra.Command {
	var brokers string
	var use bool
	var security securityFlags
	cmd := &cobra.Command{
		Use:   "create NAME --brokers HOST:PORT,...",
		Short: "Create a profile; the first one becomes current",
		Example: "  sluice profile create prod --brokers kafka-1:9092,kafka-2:9092\n" +
			"  sluice profile create local --brokers localhost:9092 --use\n" +
			"  sluice profile create secure --brokers kafka-1:9094 --tls-ca ca.pem --sasl-mechanism SCRAM-SHA-512 --user alice --password-file alice.pass",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			// Names are limited so that they fit a [NAME] section header
			// and a shell word unquoted.
			if !validProfileName(name) {
				return usageErrorf("profile name %q: want letters, digits, '.', '_' or '-'", name)
			}
			if brokers == "" {
				return usageErrorf("--brokers is required: the profile's HOST:PORT seed brokers")
			}
			// Checked now, not at first use: a typo found weeks later in
			// a profile is harder to trace than one refused here.
			if _, err := parseSeeds(brokers); err != nil {
				return err
			}
			pf, err := loadProfiles()
			if err != nil {
				return err
			}
			if pf.lookup(name) != nil {
				return fmt.Errorf("profile %q already exists in %s", name, pf.path)
			}
			settings, err := security.settings(brokers)
			if err != nil {
				return err
			}
			pf.profiles = append(pf.profiles, namedProfile{Name: name, clientSettings: settings})
			// The first profile becomes current, so `profile create` then
			// any client command works without a `profile use` in between.
			if use || pf.current == "" {
				pf.current = name
			}
			if err := pf.save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created profile %s in %s\n", name, pf.path)
			if pf.current == name {
				fmt.Fprintf(cmd.OutOrStdout(), "current profile: %s\n", name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&brokers, "brokers", "", "comma-separated HOST:PORT seed brokers")
	cmd.Flags().BoolVar(&use, "use", false, "make it the current profile")
	security.register(cmd.Flags())
	return cmd
}

func newProfileDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "delete NAME",
		Short:             "Delete a profile",
		Example:           "  sluice profile delete old",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeProfiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := editProfile(args[0], func(pf *profilesFile) {
				pf.profiles = slicesDeleteProfile(pf.profiles, args[0])
				// Deleting the current profile leaves none current rather
				// than picking another: silently pointing commands at a
				// different cluster would be worse than an error.
				if pf.current == args[0] {
					pf.current = ""
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted profile %s\n", args[0])
			return nil
		},
	}
}

// editProfile loads the profiles file, checks that profile name exists,
// applies change and saves the file.
func editProfile(name string, change func(pf *profilesFile)) error {
	pf, err := loadProfiles()
	if err != nil {
		return err
	}
	if _, err := pf.get(name); err != nil {
		return err
	}
	change(pf)
	return pf.save()
}
