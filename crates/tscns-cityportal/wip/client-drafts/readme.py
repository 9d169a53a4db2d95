p='README.md'
s=open(p).read()
s=s.replace("""scripts/tscns demo        # the main job: a citizen logs in to a municipal site with the card""","""scripts/tscns demo        # the main job: a citizen logs in to the municipal portal with the card and gets sealed certificates""")
old=s[s.index("`scripts/tscns demo` does the whole citizen journey"):s.index("`scripts/tscns readers` lists the")]
new="""`scripts/tscns demo` does the whole citizen journey in one process, on 127.0.0.1 only: it takes the card
in a PC/SC reader (`--reader R`; with a real card give the CA that issued it with `--cns-ca FILE` and type
the PIN) or, when no reader holds one, the built-in simulated card (`--simulated [PROFILE]` forces it), prints
its identity, starts the Cohesion emulator and the reference municipal portal (`tscns-cityportal`, on an
embedded SQLite store with the San Benedetto del Tronto registry fixture and a test seal), logs in through the
smart-card method with one card signature, prints the Interrogazione Anagrafe, gets a certificato di
residenza (with an exemption) and a stato di famiglia (with a demo marca da bollo) and an autocertificazione,
writes the three PDFs under `./tscns-demo/` (`--dir`), verifies each certificate's seal and asks its QR code's
URL at the portal's verification page, logs out (LogoutSito) and stops everything it started (`--json` for
one JSON object with the facts). `scripts/tscns demo --serve` keeps the emulator and the portal running until
Ctrl-C and prints the URL to open in a browser and the password logins of the fixture's residents. The
emulator's small demo site stays for the Cohesion examples. The same services from a terminal:
`tscns portal record|family|options|certificate|declaration|list|verify URL`. """
s=s.replace(old,new)
open(p,'w').write(s)
