// Change password, log out, log out everywhere, delete account: each ends the
// session here at once (the API ends it everywhere for all but plain log out).
import { useState, type FormEvent } from "react";
import { useClient } from "urql";
import { ChangePasswordMutation, DeleteAccountMutation, LogoutAllMutation } from "../../api/documents";
import { describe, problems, splitByField } from "../../api/graphqlErrors";
import { useSession } from "../../app/SessionContext";
import { useLogout } from "../../app/useLogout";
import { Dialog } from "../../components/Dialog";
import { Field, FormError } from "../../components/Field";
import { useToasts } from "../../components/Toasts";

export function AccountPage({ email }: { email: string }) {
  const client = useClient();
  const session = useSession();
  const toasts = useToasts();

  const logout = useLogout();

  async function logoutEverywhere() {
    const result = await client.mutation(LogoutAllMutation, {}).toPromise();
    if (result.data?.logoutAll) session.signOut("You are signed out on every device.");
    else toasts.show(describe(problems(result.error)[0]!), { tone: "error" });
  }

  return (
    <>
      <h1>Account</h1>
      <section className="card" aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">Sessions</h2>
        <p>
          Signed in as <strong>{email}</strong>.
        </p>
        <div className="button-row">
          <button type="button" onClick={() => void logout()}>
            Log out
          </button>
          <button type="button" onClick={() => void logoutEverywhere()}>
            Log out everywhere
          </button>
        </div>
      </section>
      <ChangePasswordForm />
      <DeleteAccount />
    </>
  );
}

const PASSWORD_FIELDS = ["currentPassword", "newPassword"] as const;

function ChangePasswordForm() {
  const client = useClient();
  const session = useSession();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<ReturnType<typeof splitByField>>({ byField: {}, general: [] });

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const result = await client.mutation(ChangePasswordMutation, { currentPassword: current, newPassword: next }).toPromise();
    setBusy(false);
    if (result.data?.changePassword) {
      // The API ended every session, this one included.
      session.signOut("Password changed. Sign in with your new password.");
      return;
    }
    setErrors(splitByField(problems(result.error), PASSWORD_FIELDS));
  }

  return (
    <form className="card" onSubmit={submit} noValidate aria-labelledby="password-heading">
      <h2 id="password-heading">Change password</h2>
      <p className="hint">Every session ends, this one too: you sign in again with the new password.</p>
      <Field
        label="Current password"
        name="currentPassword"
        type="password"
        autoComplete="current-password"
        value={current}
        onChange={(e) => setCurrent(e.target.value)}
        error={errors.byField.currentPassword}
      />
      <Field
        label="New password"
        name="newPassword"
        type="password"
        autoComplete="new-password"
        value={next}
        onChange={(e) => setNext(e.target.value)}
        error={errors.byField.newPassword}
        hint="8 to 72 characters, with a letter and a digit."
      />
      <FormError messages={errors.general} />
      <button type="submit" className="primary" disabled={busy}>
        Change password
      </button>
    </form>
  );
}

function DeleteAccount() {
  const client = useClient();
  const session = useSession();
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<ReturnType<typeof splitByField>>({ byField: {}, general: [] });

  async function confirm(event: FormEvent) {
    event.preventDefault();
    const result = await client.mutation(DeleteAccountMutation, { password }).toPromise();
    if (result.data?.deleteAccount) {
      session.signOut("Your account, tasks and files have been deleted.");
      return;
    }
    setErrors(splitByField(problems(result.error), ["password"]));
  }

  return (
    <section className="card danger-zone" aria-labelledby="delete-heading">
      <h2 id="delete-heading">Delete account</h2>
      <p>Your tasks and files are deleted with it. This cannot be undone.</p>
      <button type="button" className="danger" onClick={() => setOpen(true)}>
        Delete account…
      </button>
      <Dialog open={open} title="Delete your account?" onClose={() => setOpen(false)}>
        <form onSubmit={confirm} noValidate>
          <p>Enter your password to confirm. Your tasks and files are deleted too.</p>
          <Field
            label="Password"
            name="password"
            type="password"
            autoComplete="current-password"
            autoFocus
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            error={errors.byField.password}
          />
          <FormError messages={errors.general} />
          <div className="button-row">
            <button type="submit" className="danger">
              Delete account
            </button>
            <button type="button" onClick={() => setOpen(false)}>
              Cancel
            </button>
          </div>
        </form>
      </Dialog>
    </section>
  );
}
