// Every operation the app sends, typed by graphql-codegen from schema/api.graphql.
import { graphql } from "../gql";

export const AuthFields = graphql(`
  fragment AuthFields on AuthPayload {
    accessToken
    refreshToken
    expiresIn
    user {
      id
      email
    }
  }
`);

export const LoginMutation = graphql(`
  mutation Login($email: String!, $password: String!) {
    login(email: $email, password: $password) {
      ...AuthFields
    }
  }
`);

export const RegisterMutation = graphql(`
  mutation Register($email: String!, $password: String!) {
    register(email: $email, password: $password) {
      ...AuthFields
    }
  }
`);

export const RefreshMutation = graphql(`
  mutation Refresh($token: String!) {
    refreshToken(token: $token) {
      ...AuthFields
    }
  }
`);

export const LogoutMutation = graphql(`
  mutation Logout($refreshToken: String!) {
    logout(refreshToken: $refreshToken)
  }
`);

export const LogoutAllMutation = graphql(`
  mutation LogoutAll {
    logoutAll
  }
`);

export const ChangePasswordMutation = graphql(`
  mutation ChangePassword($currentPassword: String!, $newPassword: String!) {
    changePassword(currentPassword: $currentPassword, newPassword: $newPassword)
  }
`);

export const DeleteAccountMutation = graphql(`
  mutation DeleteAccount($password: String!) {
    deleteAccount(password: $password)
  }
`);

export const TaskFields = graphql(`
  fragment TaskFields on Task {
    id
    title
    description
    status
    dueAt
    createdAt
    updatedAt
  }
`);

export const TaskCountsQuery = graphql(`
  query TaskCounts {
    all: tasks(first: 0) {
      totalCount
    }
    todo: tasks(first: 0, status: TODO) {
      totalCount
    }
    inProgress: tasks(first: 0, status: IN_PROGRESS) {
      totalCount
    }
    done: tasks(first: 0, status: DONE) {
      totalCount
    }
  }
`);

export const TasksQuery = graphql(`
  query Tasks($first: Int!, $after: String, $status: TaskStatus, $orderBy: TaskOrder) {
    tasks(first: $first, after: $after, status: $status, orderBy: $orderBy) {
      totalCount
      edges {
        cursor
        node {
          ...TaskFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const CreateTaskMutation = graphql(`
  mutation CreateTask($input: CreateTaskInput!) {
    createTask(input: $input) {
      ...TaskFields
    }
  }
`);

export const UpdateTaskMutation = graphql(`
  mutation UpdateTask($id: ID!, $input: UpdateTaskInput!) {
    updateTask(id: $id, input: $input) {
      ...TaskFields
    }
  }
`);

export const DeleteTaskMutation = graphql(`
  mutation DeleteTask($id: ID!) {
    deleteTask(id: $id)
  }
`);

export const FileFields = graphql(`
  fragment FileFields on File {
    id
    filename
    contentType
    size
    createdAt
  }
`);

export const FilesQuery = graphql(`
  query Files($first: Int!, $after: String) {
    files(first: $first, after: $after) {
      totalCount
      edges {
        cursor
        node {
          ...FileFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

export const DownloadUrlQuery = graphql(`
  query DownloadUrl($id: ID!) {
    file(id: $id) {
      id
      downloadUrl
    }
  }
`);

export const UploadFileMutation = graphql(`
  mutation UploadFile($file: Upload!) {
    uploadFile(file: $file) {
      ...FileFields
    }
  }
`);

export const RenameFileMutation = graphql(`
  mutation RenameFile($id: ID!, $filename: String!) {
    renameFile(id: $id, filename: $filename) {
      ...FileFields
    }
  }
`);

export const DeleteFileMutation = graphql(`
  mutation DeleteFile($id: ID!) {
    deleteFile(id: $id)
  }
`);
